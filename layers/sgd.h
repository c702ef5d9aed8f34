// SGD with momentum, as torch.optim.SGD. For each parameter p with gradient grad:
//   g = grad + weight_decay * p                       (L2 penalty folded into the gradient)
//   if momentum != 0:
//     buf = g                                          on the parameter's first step
//     buf = momentum * buf + (1 - dampening) * g       afterwards
//     g   = nesterov ? g + momentum * buf : buf
//   p -= lr * g
// State: "momentum_buffer" (only when momentum != 0).
#pragma once
#include "layers/optim.h"

namespace minidl {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // default for groups that leave it unset
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  SGD(std::vector<Tensor> params, const SGDOptions& options);  // one group
  const SGDOptions options;

 protected:
  void update(const ParamGroup& group, Tensor& p, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> state_keys() const override { return {"momentum_buffer"}; }
};

}  // namespace minidl
