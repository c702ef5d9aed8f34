// Which convolution runs on the GPU: cuDNN (the default) or our own im2col + tiled-GEMM
// kernels (the teaching path, kernels/cuda/conv_own.h), chosen by the environment variable
// MINIDL_CONV=cudnn|own. The parsing is plain C++ (CPU-tested); the conv2d_cuda_* entry
// points that dispatch on it are defined in conv_select.cpp (CUDA builds only).
#pragma once
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/conv2d.h"  // ConvGeom: the same geometry on both devices
#include "tensor/error.h"

namespace minidl::cuda {

enum class ConvImpl { Cudnn, Own };

inline const char* conv_impl_name(ConvImpl impl) { return impl == ConvImpl::Own ? "own" : "cudnn"; }

// The value of MINIDL_CONV (nullptr or empty: unset). Anything else is an Error naming the
// variable and the allowed values.
inline ConvImpl parse_conv_impl(const char* value) {
  if (!value || !*value || !std::strcmp(value, "cudnn")) return ConvImpl::Cudnn;
  if (!std::strcmp(value, "own")) return ConvImpl::Own;
  throw Error(detail::concat("MINIDL_CONV='", value,
                             "' is not a convolution implementation; allowed values: cudnn (the default), own"));
}

// Read at every convolution, before any launch (so a bad value is an ordinary Error, and a
// test can switch implementations with setenv); getenv costs nanoseconds next to a conv.
inline ConvImpl conv_impl_from_env() { return parse_conv_impl(std::getenv("MINIDL_CONV")); }

// float32, contiguous NCHW device pointers; the implementation per MINIDL_CONV.
// y = conv(x, w) + bias (bias may be nullptr).
void conv2d_cuda_forward(const cpu::ConvGeom& g, const float* x, const float* w, const float* bias, float* y);
// dx = the adjoint of the convolution applied to dy (overwritten).
void conv2d_cuda_backward_input(const cpu::ConvGeom& g, const float* dy, const float* w, float* dx);
// dw (may be nullptr) and db (may be nullptr) from dy and x (overwritten).
void conv2d_cuda_backward_weight(const cpu::ConvGeom& g, const float* dy, const float* x, float* dw, float* db);

}  // namespace minidl::cuda
