// BatchNorm2d: per-channel normalisation of [N, C, H, W] with a learned scale and shift.
// Training normalises with the batch's statistics and folds them into the running ones,
//   running = (1 - momentum) * running + momentum * batch   (variance unbiased),
// and counts batches in num_batches_tracked; eval normalises with the running statistics.
// Parameters weight = 1, bias = 0; buffers running_mean = 0, running_var = 1 and
// num_batches_tracked (0-dim int64), registered in torch's order so state_dict keys match.
#pragma once
#include "layers/module.h"

namespace minidl {

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       DType dtype = DType::Float32);

  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) and relu(forward(x) + identity) as one fused op (autograd/ops.h):
  // same values, gradients and running-statistics updates as the unfused composition.
  Tensor forward_relu(const Tensor& x);
  Tensor forward_add_relu(const Tensor& x, const Tensor& identity);

  const int64_t num_features;
  const double eps, momentum;
  Tensor weight, bias;                   // [C], trained
  Tensor running_mean, running_var;      // [C], updated in training forward
  Tensor num_batches_tracked;            // [] int64

 private:
  void check_input(const Tensor& x) const;
  void count_batch();  // num_batches_tracked += 1, on whichever device it lives
};

}  // namespace minidl
