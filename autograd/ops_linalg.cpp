// matmul and linear, on the GEMM kernel (the CPU's, or cuBLAS for tensors on the GPU).
//   C = A B:        dA = dC B^T,  dB = A^T dC
//   y = x W^T + b:  dx = dy W,    dW = dy^T x,  db = sum_n dy
#include "autograd/op_util.h"
#include "kernels/cpu/gemm.h"
#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/bias.h"
#include "kernels/cuda/cublas_gemm.h"
#endif

namespace minidl {

using namespace detail;

namespace {
// out[M,N] = op(a) op(b) with op = transpose where asked; a, b contiguous 2-D, on one device.
Tensor gemm_op(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t N = tb ? b.size(0) : b.size(1);
  Tensor out = Tensor::empty({M, N}, a.dtype(), a.device());
#ifdef MINIDL_WITH_CUDA
  if (a.device() == Device::CUDA) {
    cuda::cublas_sgemm(ta, tb, M, N, K, 1.f, a.data<float>(), a.size(1), b.data<float>(), b.size(1), 0.f,
                       out.data<float>(), N);
    return out;
  }
#endif
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    cpu::gemm<T>(ta, tb, M, N, K, T(1), a.data<T>(), a.size(1), b.data<T>(), b.size(1), T(0), out.data<T>(), N);
  });
  return out;
}

// out[n, f] += b[f]; out and b contiguous, on one device.
void add_bias_rows(Tensor& out, const Tensor& b) {
  const int64_t N = out.size(0), F = out.size(1);
#ifdef MINIDL_WITH_CUDA
  if (out.device() == Device::CUDA) {
    cuda::bias_add(out.data<float>(), b.data<float>(), N, F, 1);
    return;
  }
#endif
  dispatch_float(out.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    const T* bb = b.data<T>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t f = 0; f < F; ++f) o[n * F + f] += bb[f];
  });
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  const Device dev = common_device("matmul", {&a, &b});
  check_float("matmul", a);
  check_same_dtype("matmul", a, b);
  if (dev == Device::CUDA) check_cuda_float32("matmul", a);
  check_dim("matmul", a, 2, "first input");
  check_dim("matmul", b, 2, "second input");
  MINIDL_CHECK(a.size(1) == b.size(0), "matmul: inner sizes differ: ", shape_str(a.shape()), " x ",
               shape_str(b.shape()));
  Tensor pa = plain(a), pb = plain(b);
  Tensor out = gemm_op(pa, false, pb, false);
  if (!needs_grad({&a, &b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(out, "matmul", {a, b}, [pa, pb, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
    Tensor pg = plain(g);
    return {need_a ? gemm_op(pg, false, pb, true) : Tensor(), need_b ? gemm_op(pa, true, pg, false) : Tensor()};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Device dev = common_device("linear", {&x, &weight, &bias});
  check_float("linear", x);
  check_same_dtype("linear", x, weight, "input", "weight");
  if (dev == Device::CUDA) check_cuda_float32("linear", x);
  check_dim("linear", x, 2, "input");
  check_dim("linear", weight, 2, "weight");
  MINIDL_CHECK(x.size(1) == weight.size(1), "linear: input ", shape_str(x.shape()), " has ", x.size(1),
               " features but weight ", shape_str(weight.shape()), " expects ", weight.size(1));
  if (bias.defined()) {
    check_same_dtype("linear", x, bias, "input", "bias");
    MINIDL_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias ", shape_str(bias.shape()),
                 " must be [", weight.size(0), "] for weight ", shape_str(weight.shape()));
  }
  Tensor px = plain(x), pw = plain(weight);
  Tensor out = gemm_op(px, false, pw, true);
  if (bias.defined()) add_bias_rows(out, plain(bias));
  if (!needs_grad({&x, &weight, &bias})) return out;
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(out, "linear", {x, weight, bias},
                [px, pw, need_x, need_w, need_b](const Tensor& g) -> std::vector<Tensor> {
                  Tensor pg = plain(g);
                  return {need_x ? gemm_op(pg, false, pw, false) : Tensor(),
                          need_w ? gemm_op(pg, true, px, false) : Tensor(), need_b ? sum(pg, {0}) : Tensor()};
                });
}

}  // namespace minidl
