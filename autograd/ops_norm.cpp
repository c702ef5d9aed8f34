// batch_norm: PyTorch's BatchNorm2d semantics (see kernels/cpu/batchnorm.h for the math).
#include <cmath>

#include "autograd/op_util.h"
#include "kernels/cpu/batchnorm.h"

namespace minidl {

using namespace detail;

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean, Tensor running_var,
                  bool training, double momentum, double eps) {
  check_cpu("batch_norm", {&x, &weight, &bias, &running_mean, &running_var});
  check_float("batch_norm", x);
  MINIDL_CHECK(x.dim() == 4 || x.dim() == 2, "batch_norm: input must be [N, C, H, W] or [N, C], got shape ",
               shape_str(x.shape()));
  MINIDL_CHECK(eps > 0, "batch_norm: eps must be > 0, got ", eps);
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / (N * C);
  auto check_param = [&](const Tensor& t, const char* what) {
    MINIDL_CHECK(t.defined(), "batch_norm: ", what, " is required");
    check_same_dtype("batch_norm", x, t, "input", what);
    MINIDL_CHECK(t.dim() == 1 && t.size(0) == C, "batch_norm: ", what, " has shape ", shape_str(t.shape()),
                 ", expected [", C, "] for input ", shape_str(x.shape()));
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  if (running_mean.defined() || !training) check_param(running_mean, "running_mean");
  if (running_var.defined() || !training) check_param(running_var, "running_var");
  if (running_mean.defined()) MINIDL_CHECK(running_mean.is_contiguous(), "batch_norm: running_mean must be contiguous");
  if (running_var.defined()) MINIDL_CHECK(running_var.is_contiguous(), "batch_norm: running_var must be contiguous");
  MINIDL_CHECK(!training || N * HW > 1, "batch_norm: training needs more than one value per channel, got input ",
               shape_str(x.shape()));

  Tensor px = plain(x), pg = plain(weight), pb = plain(bias);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty({C}, x.dtype()), invstd = Tensor::empty({C}, x.dtype());
  dispatch_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    if (training) {
      cpu::batchnorm_forward_train<T>(px.data<T>(), pg.data<T>(), pb.data<T>(), N, C, HW, eps, momentum, out.data<T>(),
                                      mean.data<T>(), invstd.data<T>(),
                                      running_mean.defined() ? running_mean.data<T>() : nullptr,
                                      running_var.defined() ? running_var.data<T>() : nullptr);
    } else {
      cpu::batchnorm_forward_eval<T>(px.data<T>(), pg.data<T>(), pb.data<T>(), running_mean.data<T>(),
                                     running_var.data<T>(), N, C, HW, eps, out.data<T>());
      // Backward in eval mode treats the running statistics as constants.
      const T* rm = running_mean.data<T>();
      const T* rv = running_var.data<T>();
      for (int64_t c = 0; c < C; ++c) {
        mean.data<T>()[c] = rm[c];
        invstd.data<T>()[c] = static_cast<T>(1.0 / std::sqrt(double(rv[c]) + eps));
      }
    }
  });
  if (!needs_grad({&x, &weight, &bias})) return out;
  const bool need_x = x.requires_grad(), need_g = weight.requires_grad(), need_b = bias.requires_grad();
  return record(out, "batch_norm", {x, weight, bias},
                [px, pg, mean, invstd, N, C, HW, training, need_x, need_g, need_b](const Tensor& grad)
                    -> std::vector<Tensor> {
                  Tensor dy = plain(grad);
                  Tensor dx = need_x ? Tensor::empty(px.shape(), px.dtype()) : Tensor();
                  Tensor dg = need_g ? Tensor::empty({C}, px.dtype()) : Tensor();
                  Tensor db = need_b ? Tensor::empty({C}, px.dtype()) : Tensor();
                  dispatch_float(px.dtype(), "batch_norm backward", [&](auto tag) {
                    using T = decltype(tag);
                    cpu::batchnorm_backward<T>(dy.data<T>(), px.data<T>(), pg.data<T>(), mean.data<T>(),
                                               invstd.data<T>(), N, C, HW, training,
                                               need_x ? dx.data<T>() : nullptr, need_g ? dg.data<T>() : nullptr,
                                               need_b ? db.data<T>() : nullptr);
                  });
                  return {dx, dg, db};
                });
}

}  // namespace minidl
