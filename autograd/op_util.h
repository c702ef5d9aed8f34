// Checks and small helpers shared by the op files.
#pragma once
#include <initializer_list>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/factory.h"

namespace minidl::detail {

// The device seam. Every op first asks which device its tensors are on (all defined ones
// must agree), then picks kernels/cpu or kernels/cuda in one visible branch:
//   const Device dev = common_device("add", {&a, &b});
//   #ifdef MINIDL_WITH_CUDA
//   if (dev == Device::CUDA) { ...kernels/cuda... }
//   #endif
// A CUDA tensor cannot exist in a build without the CUDA backend, so the CPU path is the
// only one there.
inline Device common_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (!first) first = t;
    MINIDL_CHECK(t->device() == first->device(), op, ": tensors on different devices (", device_name(first->device()),
                 " and ", device_name(t->device()), "); move them with .to(Device::", 
                 first->device() == Device::CPU ? "CPU" : "CUDA", ") first");
  }
  return first ? first->device() : Device::CPU;
}

// For ops (or op variants) that have only a CPU kernel.
inline void check_cpu(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t && t->defined())
      MINIDL_CHECK(t->device() == Device::CPU, op, ": tensor on ", device_name(t->device()),
                   " but this op has only a cpu kernel; move it with .to(Device::CPU)");
}

// The CUDA kernels compute in float32 only (float64 is for CPU gradient checks).
inline void check_cuda_float32(const char* op, const Tensor& t, const char* what = "input") {
  MINIDL_CHECK(t.dtype() == DType::Float32, op, ": ", what, " has dtype ", dtype_name(t.dtype()),
               " on cuda, where only float32 is computed; convert with .to(DType::Float32)");
}

inline void check_float(const char* op, const Tensor& t, const char* what = "input") {
  MINIDL_CHECK(is_floating_compute(t.dtype()), op, ": ", what, " has dtype ", dtype_name(t.dtype()),
               "; float32 or float64 expected");
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b, const char* wa = "first input",
                             const char* wb = "second input") {
  MINIDL_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", wa, " is ", dtype_name(a.dtype()), ", ", wb, " is ",
               dtype_name(b.dtype()), " (convert one with .to())");
}

inline void check_dim(const char* op, const Tensor& t, int64_t ndim, const char* what) {
  MINIDL_CHECK(t.dim() == ndim, op, ": ", what, " must have ", ndim, " dims, got shape ", shape_str(t.shape()));
}

// A contiguous tensor with t's values and no autograd history: what kernels read.
inline Tensor plain(const Tensor& t) {
  NoGradGuard g;
  return t.detach().contiguous();
}

}  // namespace minidl::detail
