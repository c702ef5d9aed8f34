// log_softmax and cross_entropy (see kernels/cpu/softmax.h for the math).
#include "autograd/op_util.h"
#include "kernels/cpu/softmax.h"

namespace minidl {

using namespace detail;

Tensor log_softmax(const Tensor& x, int64_t dim) {
  check_cpu("log_softmax", {&x});
  check_float("log_softmax", x);
  check_dim("log_softmax", x, 2, "input (N, C)");
  MINIDL_CHECK(wrap_dim(dim, 2, "log_softmax") == 1, "log_softmax: only the class dim (1 or -1) is supported, got ",
               dim);
  const int64_t N = x.size(0), C = x.size(1);
  Tensor px = plain(x);
  Tensor out = Tensor::empty({N, C}, x.dtype());
  dispatch_float(x.dtype(), "log_softmax", [&](auto tag) {
    using T = decltype(tag);
    cpu::log_softmax_forward<T>(px.data<T>(), N, C, out.data<T>());
  });
  Tensor saved = out.detach();
  return record(out, "log_softmax", {x}, [saved, N, C](const Tensor& grad) -> std::vector<Tensor> {
    Tensor dy = plain(grad);
    Tensor dx = Tensor::empty({N, C}, dy.dtype());
    dispatch_float(dy.dtype(), "log_softmax backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::log_softmax_backward<T>(dy.data<T>(), saved.data<T>(), N, C, dx.data<T>());
    });
    return {dx};
  });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  check_cpu("cross_entropy", {&logits, &labels});
  check_float("cross_entropy", logits, "logits");
  check_dim("cross_entropy", logits, 2, "logits (N, C)");
  MINIDL_CHECK(labels.dtype() == DType::Int64, "cross_entropy: labels must be int64, got ", dtype_name(labels.dtype()));
  MINIDL_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), "cross_entropy: labels ",
               shape_str(labels.shape()), " must be [", logits.size(0), "] for logits ", shape_str(logits.shape()));
  MINIDL_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing must be in [0, 1], got ",
               label_smoothing);
  const int64_t N = logits.size(0), C = logits.size(1);
  Tensor pl = plain(labels);
  const int64_t* y = pl.data<int64_t>();
  for (int64_t n = 0; n < N; ++n)
    MINIDL_CHECK(y[n] >= 0 && y[n] < C, "cross_entropy: label ", y[n], " at position ", n, " is outside [0, ", C,
                 ") for ", C, " classes");
  Tensor px = plain(logits);
  Tensor logp = Tensor::empty({N, C}, logits.dtype());
  double loss = 0;
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    loss = cpu::cross_entropy_forward<T>(px.data<T>(), y, N, C, label_smoothing, logp.data<T>());
  });
  Tensor out = scalar(loss, logits.dtype());
  return record(out, "cross_entropy", {logits}, [logp, pl, N, C, label_smoothing](const Tensor& grad)
                                                     -> std::vector<Tensor> {
    Tensor dx = Tensor::empty({N, C}, logp.dtype());
    dispatch_float(logp.dtype(), "cross_entropy backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::cross_entropy_backward<T>(logp.data<T>(), pl.data<int64_t>(), N, C, label_smoothing, grad.item(),
                                     dx.data<T>());
    });
    return {dx};
  });
}

}  // namespace minidl
