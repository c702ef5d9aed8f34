// Checks and small helpers shared by the op files.
#pragma once
#include <initializer_list>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/factory.h"

namespace minidl::detail {

// The device seam: every op routes through here before choosing a kernel. CPU kernels are
// the only ones in this build; a CUDA tensor cannot be created without the CUDA backend.
inline void check_cpu(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t && t->defined())
      MINIDL_CHECK(t->device() == Device::CPU, op, ": tensor on ", device_name(t->device()),
                   " but this op has only a cpu kernel in this build");
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
