// AdamW (decoupled weight decay), as torch.optim.AdamW. For each parameter p with gradient
// g, with t its own step count (1 on its first update):
//   p *= 1 - lr * weight_decay                  (decay applied to the weights, not to g)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g^2
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// m and v start at zero. State: "step" (0-dim int64), "exp_avg" (m), "exp_avg_sq" (v).
// Not implemented: amsgrad, maximize.
#pragma once
#include "layers/optim.h"

namespace minidl {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // default for groups that leave it unset
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options);
  AdamW(std::vector<Tensor> params, const AdamWOptions& options);  // one group
  const AdamWOptions options;

 protected:
  void update(const ParamGroup& group, Tensor& p, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_keys() const override { return {"step", "exp_avg", "exp_avg_sq"}; }
};

}  // namespace minidl
