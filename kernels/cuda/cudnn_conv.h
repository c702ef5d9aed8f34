// cuDNN convolution (the default GPU conv, MINIDL_CONV=cudnn; see conv_select.h). Every
// cuDNN call in minidl lives in cudnn_conv.cpp. float32 NCHW device pointers, contiguous,
// queued on cuda::stream(); outputs overwritten. The algorithm of each pass is measured once
// per shape (cudnnFind*AlgorithmEx) and cached (conv_algo_cache.h); its workspace comes from
// the caching allocator.
#pragma once
#include <cstddef>

#include "kernels/cpu/conv2d.h"  // ConvGeom

namespace minidl::cuda {

// y = conv(x, w) + bias (bias may be nullptr).
void cudnn_conv_forward(const cpu::ConvGeom& g, const float* x, const float* w, const float* bias, float* y);
void cudnn_conv_backward_data(const cpu::ConvGeom& g, const float* dy, const float* w, float* dx);
// dw and db may each be nullptr (not wanted).
void cudnn_conv_backward_filter(const cpu::ConvGeom& g, const float* dy, const float* x, float* dw, float* db);

// Shapes with a cached plan, per pass (forward + backward data + backward filter), for tests.
size_t cudnn_conv_cached_plans();

}  // namespace minidl::cuda
