// batch_norm: PyTorch's BatchNorm2d semantics (see kernels/cpu/batchnorm.h for the math),
// and the fused batch_norm_relu / batch_norm_add_relu: the same op with relu(y) or
// relu(y + identity) applied before the output is written, and relu's mask applied to the
// gradient inside the batch-norm backward (one node, no separate relu/add passes).
#include <cmath>

#include "autograd/op_util.h"
#include "kernels/cpu/batchnorm.h"
#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/batchnorm.h"
#endif

namespace minidl {

using namespace detail;

namespace {

// The one implementation: identity undefined = no residual add.
Tensor batch_norm_impl(const char* op, const Tensor& x, const Tensor* identity, bool relu, const Tensor& weight,
                       const Tensor& bias, Tensor running_mean, Tensor running_var, bool training, double momentum,
                       double eps) {
  const Device dev = common_device(op, {&x, identity, &weight, &bias, &running_mean, &running_var});
  check_float(op, x);
  if (dev == Device::CUDA) check_cuda_float32(op, x);
  MINIDL_CHECK(x.dim() == 4 || x.dim() == 2, op, ": input must be [N, C, H, W] or [N, C], got shape ",
               shape_str(x.shape()));
  MINIDL_CHECK(eps > 0, op, ": eps must be > 0, got ", eps);
  MINIDL_CHECK(x.size(0) > 0 && x.size(1) > 0, op, ": input ", shape_str(x.shape()), " has no samples or no channels");
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / (N * C);
  auto check_param = [&](const Tensor& t, const char* what) {
    MINIDL_CHECK(t.defined(), op, ": ", what, " is required");
    check_same_dtype(op, x, t, "input", what);
    MINIDL_CHECK(t.dim() == 1 && t.size(0) == C, op, ": ", what, " has shape ", shape_str(t.shape()),
                 ", expected [", C, "] for input ", shape_str(x.shape()));
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  if (running_mean.defined() || !training) check_param(running_mean, "running_mean");
  if (running_var.defined() || !training) check_param(running_var, "running_var");
  if (running_mean.defined()) MINIDL_CHECK(running_mean.is_contiguous(), op, ": running_mean must be contiguous");
  if (running_var.defined()) MINIDL_CHECK(running_var.is_contiguous(), op, ": running_var must be contiguous");
  MINIDL_CHECK(!training || N * HW > 1, op, ": training needs more than one value per channel, got input ",
               shape_str(x.shape()));
  if (identity) {
    MINIDL_CHECK(identity->defined(), op, ": identity is required");
    check_same_dtype(op, x, *identity, "input", "identity");
    MINIDL_CHECK(identity->shape() == x.shape(), op, ": identity has shape ", shape_str(identity->shape()),
                 ", expected the input's ", shape_str(x.shape()));
  }

  Tensor px = plain(x), pg = plain(weight), pb = plain(bias);
  Tensor pid = identity ? plain(*identity) : Tensor();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor mean = Tensor::empty({C}, x.dtype(), dev), invstd = Tensor::empty({C}, x.dtype(), dev);
  // Parameters share x's dtype (checked), so on cuda they are float32 too.
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) {
    const float* res = identity ? pid.data<float>() : nullptr;
    if (training)
      cuda::batchnorm_forward_train(px.data<float>(), pg.data<float>(), pb.data<float>(), N, C, HW, eps, momentum,
                                    out.data<float>(), mean.data<float>(), invstd.data<float>(),
                                    running_mean.defined() ? running_mean.data<float>() : nullptr,
                                    running_var.defined() ? running_var.data<float>() : nullptr, res, relu);
    else  // also writes the constants backward uses: mean = running_mean, invstd = rsqrt(running_var + eps)
      cuda::batchnorm_forward_eval(px.data<float>(), pg.data<float>(), pb.data<float>(), running_mean.data<float>(),
                                   running_var.data<float>(), N, C, HW, eps, out.data<float>(), mean.data<float>(),
                                   invstd.data<float>(), res, relu);
  } else
#endif
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* res = identity ? pid.data<T>() : nullptr;
    if (training) {
      cpu::batchnorm_forward_train<T>(px.data<T>(), pg.data<T>(), pb.data<T>(), N, C, HW, eps, momentum, out.data<T>(),
                                      mean.data<T>(), invstd.data<T>(),
                                      running_mean.defined() ? running_mean.data<T>() : nullptr,
                                      running_var.defined() ? running_var.data<T>() : nullptr, res, relu);
    } else {
      cpu::batchnorm_forward_eval<T>(px.data<T>(), pg.data<T>(), pb.data<T>(), running_mean.data<T>(),
                                     running_var.data<T>(), N, C, HW, eps, out.data<T>(), res, relu);
      // Backward in eval mode treats the running statistics as constants.
      const T* rm = running_mean.data<T>();
      const T* rv = running_var.data<T>();
      for (int64_t c = 0; c < C; ++c) {
        mean.data<T>()[c] = rm[c];
        invstd.data<T>()[c] = static_cast<T>(1.0 / std::sqrt(double(rv[c]) + eps));
      }
    }
  });
  std::vector<Tensor> inputs = {x, weight, bias};
  if (identity) inputs.push_back(*identity);
  if (!needs_grad({&x, &weight, &bias, identity})) return out;
  const bool need_x = x.requires_grad(), need_g = weight.requires_grad(), need_b = bias.requires_grad();
  const bool has_id = identity != nullptr, need_id = has_id && identity->requires_grad();
  // relu's mask is read from the output (out > 0), as relu's own backward does; detached so
  // the node does not own its own output.
  const Tensor saved_out = relu ? out.detach() : Tensor();
  return record(out, op, std::move(inputs),
                [px, pg, mean, invstd, saved_out, N, C, HW, training, need_x, need_g, need_b, need_id,
                 has_id, op](const Tensor& grad) -> std::vector<Tensor> {
                  Tensor dy = plain(grad);
                  const Device d = px.device();
                  Tensor dx = need_x ? Tensor::empty(px.shape(), px.dtype(), d) : Tensor();
                  Tensor dg = need_g ? Tensor::empty({C}, px.dtype(), d) : Tensor();
                  Tensor db = need_b ? Tensor::empty({C}, px.dtype(), d) : Tensor();
                  Tensor did = need_id ? Tensor::empty(px.shape(), px.dtype(), d) : Tensor();
#ifdef MINIDL_WITH_CUDA
                  if (d == Device::CUDA)
                    cuda::batchnorm_backward(dy.data<float>(), px.data<float>(), pg.data<float>(), mean.data<float>(),
                                             invstd.data<float>(), N, C, HW, training,
                                             need_x ? dx.data<float>() : nullptr, need_g ? dg.data<float>() : nullptr,
                                             need_b ? db.data<float>() : nullptr,
                                             saved_out.defined() ? saved_out.data<float>() : nullptr,
                                             need_id ? did.data<float>() : nullptr);
                  else
#endif
                  dispatch_float(px.dtype(), op, [&](auto tag) {
                    using T = decltype(tag);
                    cpu::batchnorm_backward<T>(dy.data<T>(), px.data<T>(), pg.data<T>(), mean.data<T>(),
                                               invstd.data<T>(), N, C, HW, training,
                                               need_x ? dx.data<T>() : nullptr, need_g ? dg.data<T>() : nullptr,
                                               need_b ? db.data<T>() : nullptr,
                                               saved_out.defined() ? saved_out.data<T>() : nullptr,
                                               need_id ? did.data<T>() : nullptr);
                  });
                  if (has_id) return {dx, dg, db, did};
                  return {dx, dg, db};
                });
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean, Tensor running_var,
                  bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm", x, nullptr, false, weight, bias, std::move(running_mean),
                         std::move(running_var), training, momentum, eps);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                       Tensor running_var, bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm_relu", x, nullptr, true, weight, bias, std::move(running_mean),
                         std::move(running_var), training, momentum, eps);
}

Tensor batch_norm_add_relu(const Tensor& x, const Tensor& identity, const Tensor& weight, const Tensor& bias,
                           Tensor running_mean, Tensor running_var, bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm_add_relu", x, &identity, true, weight, bias, std::move(running_mean),
                         std::move(running_var), training, momentum, eps);
}

}  // namespace minidl
