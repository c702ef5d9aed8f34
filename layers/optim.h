// Optimizer: the shared machinery of SGD and AdamW. Parameters come in groups, each with
// its own lr and weight_decay (a fine-tuned backbone can learn slower than a new head, and
// biases/BN parameters can skip weight decay). step() walks every parameter that received a
// gradient and hands it to the subclass's update rule, outside autograd.
//
// Devices: the optimizer holds the parameters' handles, so a model moved with Module::to
// (which keeps each parameter's TensorImpl) is seen by an optimizer made before the move;
// state tensors live on their parameter's device and follow it when it moves. Creating the
// optimizer after the move is still the cheaper order (nothing to move at the first step).
//
// Per-parameter state (momentum buffers, Adam moments, step counts) is kept as named
// tensors: state_dict() lists them as "<index>.<key>", where <index> numbers parameters
// across groups in order (torch's numbering), and load_state_dict() puts them back, so a
// checkpoint can resume an optimizer exactly.
#pragma once
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "layers/module.h"

namespace minidl {

struct ParamGroup {
  // NaN means "not set": the optimizer fills in its default at construction, so after that
  // lr and weight_decay always hold numbers.
  static constexpr double kUnset = std::numeric_limits<double>::quiet_NaN();

  std::vector<Tensor> params;
  double lr = kUnset;
  double weight_decay = kUnset;
  std::string name;  // optional, for logs ("decay", "no_decay", "backbone", ...)
  // Filled in by the optimizer: the lr the group started with. LR schedules scale from it
  // (torch's "initial_lr"), so they never compound on their own output.
  double initial_lr = kUnset;
};

// One parameter's state: named tensors, created lazily by the update rule.
using ParamState = std::map<std::string, Tensor>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter whose grad is defined; the others are left untouched
  // (their state is not advanced either). Runs under NoGradGuard.
  void step();
  // Drops every parameter's gradient.
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Adds a group (defaults filled in, same checks as at construction).
  void add_param_group(ParamGroup group);

  // The state of parameter `index` (numbered across groups in order).
  const ParamState& state(size_t index) const;
  // Every state tensor as "<index>.<key>" in index order; live handles, not copies.
  NamedTensors state_dict() const;
  // Replaces the state with copies of `saved` (as state_dict() wrote it). Keys must name a
  // parameter that exists and a key this optimizer uses; shapes must match. Strict: an
  // unknown key is an error, never skipped.
  void load_state_dict(const NamedTensors& saved);

  const std::string& name() const { return name_; }

 protected:
  Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr, double default_weight_decay);
  // The rule: update p in place from grad, using and updating `state`. p and grad are
  // contiguous and share shape and dtype.
  virtual void update(const ParamGroup& group, Tensor& p, const Tensor& grad, ParamState& state) = 0;
  // The state keys this optimizer writes (load_state_dict accepts only these).
  virtual std::vector<std::string> state_keys() const = 0;

 private:
  void prepare(ParamGroup& group) const;
  // Moves a parameter's state tensors to `device` when the parameter has moved since they
  // were made (Module::to after some steps); "step" is a host counter and stays.
  static void follow_device(ParamState& state, Device device);
  size_t num_params() const;

  std::string name_;
  double default_lr_, default_weight_decay_;
  std::vector<ParamGroup> groups_;
  std::vector<ParamState> state_;  // one per parameter, in index order
};

// All of `params` in one group with the optimizer's defaults.
std::vector<ParamGroup> single_group(std::vector<Tensor> params);

// Splits named parameters into two groups for fine-tuning: "decay" (weights with >= 2
// dims: conv and linear kernels) with `weight_decay`, and "no_decay" (1-D tensors: biases,
// BN weights and biases) with 0. Both take `lr` (unset: the optimizer's default). Empty
// groups are left out.
std::vector<ParamGroup> weight_decay_groups(const NamedTensors& named, double weight_decay,
                                            double lr = ParamGroup::kUnset);
std::vector<ParamGroup> weight_decay_groups(const Module& module, double weight_decay,
                                            double lr = ParamGroup::kUnset);

}  // namespace minidl
