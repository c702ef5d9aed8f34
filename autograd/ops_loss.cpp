// log_softmax and cross_entropy (see kernels/cpu/softmax.h for the math).
#include "autograd/op_util.h"
#include "kernels/cpu/softmax.h"
#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/softmax_loss.h"
#endif

namespace minidl {

using namespace detail;

Tensor log_softmax(const Tensor& x, int64_t dim) {
  const Device dev = common_device("log_softmax", {&x});
  check_float("log_softmax", x);
  if (dev == Device::CUDA) check_cuda_float32("log_softmax", x);
  check_dim("log_softmax", x, 2, "input (N, C)");
  MINIDL_CHECK(wrap_dim(dim, 2, "log_softmax") == 1, "log_softmax: only the class dim (1 or -1) is supported, got ",
               dim);
  const int64_t N = x.size(0), C = x.size(1);
  Tensor px = plain(x);
  Tensor out = Tensor::empty({N, C}, x.dtype(), dev);
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA)
    cuda::log_softmax_forward(px.data<float>(), N, C, out.data<float>());
  else
#endif
  dispatch_float(x.dtype(), "log_softmax", [&](auto tag) {
    using T = decltype(tag);
    cpu::log_softmax_forward<T>(px.data<T>(), N, C, out.data<T>());
  });
  Tensor saved = out.detach();
  return record(out, "log_softmax", {x}, [saved, N, C](const Tensor& grad) -> std::vector<Tensor> {
    Tensor dy = plain(grad);
    Tensor dx = Tensor::empty({N, C}, dy.dtype(), dy.device());
#ifdef MINIDL_WITH_CUDA
    if (dy.device() == Device::CUDA)
      cuda::log_softmax_backward(dy.data<float>(), saved.data<float>(), N, C, dx.data<float>());
    else
#endif
    dispatch_float(dy.dtype(), "log_softmax backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::log_softmax_backward<T>(dy.data<T>(), saved.data<T>(), N, C, dx.data<T>());
    });
    return {dx};
  });
}

namespace {

[[noreturn]] void throw_bad_label(int64_t label, int64_t position, int64_t C) {
  throw Error(detail::concat("cross_entropy: label ", label, " at position ", position, " is outside [0, ", C,
                             ") for ", C, " classes"));
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  const Device dev = common_device("cross_entropy", {&logits, &labels});
  check_float("cross_entropy", logits, "logits");
  if (dev == Device::CUDA) check_cuda_float32("cross_entropy", logits, "logits");
  check_dim("cross_entropy", logits, 2, "logits (N, C)");
  MINIDL_CHECK(labels.dtype() == DType::Int64, "cross_entropy: labels must be int64, got ", dtype_name(labels.dtype()));
  MINIDL_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), "cross_entropy: labels ",
               shape_str(labels.shape()), " must be [", logits.size(0), "] for logits ", shape_str(logits.shape()));
  MINIDL_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing must be in [0, 1], got ",
               label_smoothing);
  const int64_t N = logits.size(0), C = logits.size(1);
  Tensor pl = plain(labels);
  Tensor px = plain(logits);
  Tensor logp = Tensor::empty({N, C}, logits.dtype(), dev);
  Tensor out;
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) {
    // The labels are checked on the device during the forward (the call waits for the result).
    out = Tensor::empty({}, logits.dtype(), dev);
    const cuda::BadLabel bad = cuda::cross_entropy_forward(px.data<float>(), pl.data<int64_t>(), N, C,
                                                           label_smoothing, logp.data<float>(), out.data<float>());
    if (bad.position >= 0) throw_bad_label(bad.label, bad.position, C);
  } else
#endif
  {
    const int64_t* y = pl.data<int64_t>();
    for (int64_t n = 0; n < N; ++n)
      if (y[n] < 0 || y[n] >= C) throw_bad_label(y[n], n, C);
    double loss = 0;
    dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      loss = cpu::cross_entropy_forward<T>(px.data<T>(), y, N, C, label_smoothing, logp.data<T>());
    });
    out = scalar(loss, logits.dtype());
  }
  return record(out, "cross_entropy", {logits}, [logp, pl, N, C, label_smoothing](const Tensor& grad)
                                                     -> std::vector<Tensor> {
    Tensor dx = Tensor::empty({N, C}, logp.dtype(), logp.device());
#ifdef MINIDL_WITH_CUDA
    if (logp.device() == Device::CUDA) {
      // The incoming gradient stays on the device: the kernel reads it there.
      Tensor scale = plain(grad);
      cuda::cross_entropy_backward(logp.data<float>(), pl.data<int64_t>(), N, C, label_smoothing, scale.data<float>(),
                                   dx.data<float>());
      return {dx};
    }
#endif
    dispatch_float(logp.dtype(), "cross_entropy backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::cross_entropy_backward<T>(logp.data<T>(), pl.data<int64_t>(), N, C, label_smoothing, grad.item(),
                                     dx.data<T>());
    });
    return {dx};
  });
}

}  // namespace minidl
