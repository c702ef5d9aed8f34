#include "layers/batchnorm2d.h"

#include "autograd/ops.h"
#include "tensor/factory.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/optim.h"
#endif

namespace minidl {

BatchNorm2d::BatchNorm2d(int64_t c, double eps_, double momentum_, DType dtype)
    : Module("BatchNorm2d"), num_features(c), eps(eps_), momentum(momentum_) {
  MINIDL_CHECK(c > 0, "BatchNorm2d: num_features must be > 0, got ", c);
  MINIDL_CHECK(eps > 0, "BatchNorm2d: eps must be > 0, got ", eps);
  MINIDL_CHECK(momentum >= 0 && momentum <= 1, "BatchNorm2d: momentum must be in [0, 1], got ", momentum);
  MINIDL_CHECK(is_floating_compute(dtype), "BatchNorm2d: dtype must be float32 or float64, got ", dtype_name(dtype));
  weight = register_parameter("weight", ones({c}, dtype));
  bias = register_parameter("bias", zeros({c}, dtype));
  running_mean = register_buffer("running_mean", zeros({c}, dtype));
  running_var = register_buffer("running_var", ones({c}, dtype));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::Int64));
}

void BatchNorm2d::check_input(const Tensor& x) const {
  MINIDL_CHECK(x.dim() == 4, "BatchNorm2d(", num_features, "): expected a 4-D input [N, C, H, W], got ",
               shape_str(x.shape()));
  MINIDL_CHECK(x.size(1) == num_features, "BatchNorm2d(", num_features, "): input has ", x.size(1),
               " channels, expected ", num_features);
}

void BatchNorm2d::count_batch() {
#ifdef MINIDL_WITH_CUDA
  // On the GPU the counter is bumped by a one-thread kernel queued with the batch's work,
  // rather than read back and written (which would stall every layer).
  if (num_batches_tracked.device() == Device::CUDA) return cuda::increment_i64(num_batches_tracked.data<int64_t>(), 1);
#endif
  ++num_batches_tracked.data<int64_t>()[0];
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  check_input(x);
  Tensor y = batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
  if (is_training()) count_batch();
  return y;
}

Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  check_input(x);
  Tensor y = batch_norm_relu(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
  if (is_training()) count_batch();
  return y;
}

Tensor BatchNorm2d::forward_add_relu(const Tensor& x, const Tensor& identity) {
  check_input(x);
  Tensor y = batch_norm_add_relu(x, identity, weight, bias, running_mean, running_var, is_training(), momentum, eps);
  if (is_training()) count_batch();
  return y;
}

}  // namespace minidl
