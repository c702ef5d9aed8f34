// matmul and linear, on the GEMM kernel.
//   C = A B:        dA = dC B^T,  dB = A^T dC
//   y = x W^T + b:  dx = dy W,    dW = dy^T x,  db = sum_n dy
#include "autograd/op_util.h"
#include "kernels/cpu/gemm.h"

namespace minidl {

using namespace detail;

namespace {
// out[M,N] = op(a) op(b) with op = transpose where asked; a, b contiguous 2-D.
Tensor gemm_op(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  const int64_t N = tb ? b.size(0) : b.size(1);
  Tensor out = Tensor::empty({M, N}, a.dtype());
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    cpu::gemm<T>(ta, tb, M, N, K, T(1), a.data<T>(), a.size(1), b.data<T>(), b.size(1), T(0), out.data<T>(), N);
  });
  return out;
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_cpu("matmul", {&a, &b});
  check_float("matmul", a);
  check_same_dtype("matmul", a, b);
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
  check_cpu("linear", {&x, &weight, &bias});
  check_float("linear", x);
  check_same_dtype("linear", x, weight, "input", "weight");
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
  if (bias.defined()) {
    Tensor pb = plain(bias);
    dispatch_float(x.dtype(), "linear", [&](auto tag) {
      using T = decltype(tag);
      T* o = out.data<T>();
      const T* bb = pb.data<T>();
      const int64_t N = out.size(0), F = out.size(1);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t f = 0; f < F; ++f) o[n * F + f] += bb[f];
    });
  }
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
