#include "layers/optim.h"

#include <algorithm>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "autograd/node.h"

namespace minidl {

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr, double default_weight_decay)
    : name_(std::move(name)), default_lr_(default_lr), default_weight_decay_(default_weight_decay) {
  MINIDL_CHECK(std::isfinite(default_lr) && default_lr >= 0, name_, ": lr must be >= 0, got ", default_lr);
  MINIDL_CHECK(std::isfinite(default_weight_decay) && default_weight_decay >= 0, name_,
               ": weight_decay must be >= 0, got ", default_weight_decay);
  MINIDL_CHECK(!groups.empty(), name_, ": got no parameter groups");
  for (auto& g : groups) add_param_group(std::move(g));
  MINIDL_CHECK(num_params() > 0, name_, ": got an empty parameter list (every group is empty)");
}

void Optimizer::prepare(ParamGroup& g) const {
  const size_t index = groups_.size();
  if (std::isnan(g.lr)) g.lr = default_lr_;
  if (std::isnan(g.weight_decay)) g.weight_decay = default_weight_decay_;
  MINIDL_CHECK(std::isfinite(g.lr) && g.lr >= 0, name_, ": param group ", index, " has lr ", g.lr,
               "; lr must be >= 0");
  MINIDL_CHECK(std::isfinite(g.weight_decay) && g.weight_decay >= 0, name_, ": param group ", index,
               " has weight_decay ", g.weight_decay, "; weight_decay must be >= 0");
  if (std::isnan(g.initial_lr)) g.initial_lr = g.lr;
  for (size_t i = 0; i < g.params.size(); ++i) {
    const Tensor& p = g.params[i];
    MINIDL_CHECK(p.defined(), name_, ": param group ", index, ", parameter ", i, " is an undefined tensor");
    MINIDL_CHECK(is_floating_compute(p.dtype()), name_, ": param group ", index, ", parameter ", i, " has dtype ",
                 dtype_name(p.dtype()), "; only float32/float64 tensors can be optimized");
    MINIDL_CHECK(p.is_leaf(), name_, ": param group ", index, ", parameter ", i,
                 " is not a leaf tensor (made by '", p.grad_fn()->name, "'); cannot optimize it");
    MINIDL_CHECK(p.is_contiguous(), name_, ": param group ", index, ", parameter ", i, " is not contiguous");
  }
}

void Optimizer::add_param_group(ParamGroup group) {
  prepare(group);
  // A tensor in two groups would be updated twice per step.
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& g : groups_)
    for (const auto& p : g.params) seen.insert(p.impl_ptr().get());
  for (const auto& p : group.params)
    MINIDL_CHECK(seen.insert(p.impl_ptr().get()).second, name_, ": a parameter of shape ", shape_str(p.shape()),
                 " appears more than once across the parameter groups (group ", groups_.size(), ")");
  groups_.push_back(std::move(group));
  state_.resize(num_params());
}

size_t Optimizer::num_params() const {
  size_t n = 0;
  for (const auto& g : groups_) n += g.params.size();
  return n;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  state_.resize(num_params());  // tolerates params appended to a group after construction
  size_t index = 0;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    // A schedule or a user may have changed these since construction.
    MINIDL_CHECK(std::isfinite(g.lr) && g.lr >= 0, name_, ": param group ", gi, " has lr ", g.lr,
                 "; lr must be >= 0");
    MINIDL_CHECK(std::isfinite(g.weight_decay) && g.weight_decay >= 0, name_, ": param group ", gi,
                 " has weight_decay ", g.weight_decay, "; weight_decay must be >= 0");
    for (const Tensor& param : g.params) {
      ParamState& st = state_[index++];
      Tensor grad = param.grad();
      if (!grad.defined()) continue;
      MINIDL_CHECK(grad.device() == param.device(), name_, ": parameter ", index - 1, " is on ",
                   device_name(param.device()), " but its gradient on ", device_name(grad.device()));
      follow_device(st, param.device());
      Tensor p = param;
      update(g, p, grad.contiguous(), st);
    }
  }
}

void Optimizer::follow_device(ParamState& state, Device device) {
  for (auto& [key, t] : state)
    if (key != "step" && t.device() != device) t = t.detach().to(device);
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.zero_grad();
}

const ParamState& Optimizer::state(size_t index) const {
  MINIDL_CHECK(index < state_.size(), name_, ": state index ", index, " is out of range for ", state_.size(),
               " parameters");
  return state_[index];
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  for (size_t i = 0; i < state_.size(); ++i)
    for (const auto& [key, t] : state_[i]) out.emplace_back(std::to_string(i) + "." + key, t);
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& saved) {
  const size_t n = num_params();
  std::vector<const Tensor*> params;
  for (const auto& g : groups_)
    for (const auto& p : g.params) params.push_back(&p);
  const std::vector<std::string> keys = state_keys();
  std::vector<ParamState> fresh(n);
  for (const auto& [full, t] : saved) {
    const size_t dot = full.find('.');
    MINIDL_CHECK(dot != std::string::npos && dot > 0, name_, ": load_state_dict: key '", full,
                 "' is not of the form '<index>.<key>'");
    const std::string idx_str = full.substr(0, dot), key = full.substr(dot + 1);
    MINIDL_CHECK(std::all_of(idx_str.begin(), idx_str.end(), [](char c) { return c >= '0' && c <= '9'; }), name_,
                 ": load_state_dict: key '", full, "' does not start with a parameter index");
    const size_t idx = std::stoul(idx_str);
    MINIDL_CHECK(idx < n, name_, ": load_state_dict: key '", full, "' names parameter ", idx, " but there are only ",
                 n);
    MINIDL_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end(), name_, ": load_state_dict: key '", full,
                 "' has state '", key, "', which ", name_, " does not use");
    MINIDL_CHECK(t.defined(), name_, ": load_state_dict: '", full, "' is an undefined tensor");
    const Tensor& p = *params[idx];
    if (key == "step") {
      MINIDL_CHECK(t.dtype() == DType::Int64 && t.dim() == 0, name_, ": load_state_dict: '", full,
                   "' must be a 0-dim int64 counter, got ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
    } else {
      MINIDL_CHECK(t.shape() == p.shape() && t.dtype() == p.dtype(), name_, ": load_state_dict: '", full, "' is ",
                   dtype_name(t.dtype()), " ", shape_str(t.shape()), " but parameter ", idx, " is ",
                   dtype_name(p.dtype()), " ", shape_str(p.shape()));
    }
    MINIDL_CHECK(fresh[idx].count(key) == 0, name_, ": load_state_dict: '", full, "' appears twice");
    NoGradGuard no_grad;
    // A private copy (later steps must not write into the caller's tensor), on the
    // parameter's device; the step counter stays on the host (see follow_device).
    const Device where = key == "step" ? Device::CPU : p.device();
    Tensor copy = t.detach().to(where);
    fresh[idx][key] = copy.storage() == t.storage() ? copy.clone() : copy;
  }
  state_ = std::move(fresh);
}

std::vector<ParamGroup> single_group(std::vector<Tensor> params) {
  std::vector<ParamGroup> groups(1);
  groups[0].params = std::move(params);
  return groups;
}

std::vector<ParamGroup> weight_decay_groups(const NamedTensors& named, double weight_decay, double lr) {
  ParamGroup decay, no_decay;
  decay.name = "decay";
  decay.weight_decay = weight_decay;
  decay.lr = lr;
  no_decay.name = "no_decay";
  no_decay.weight_decay = 0.0;
  no_decay.lr = lr;
  for (const auto& [name, p] : named) (p.dim() >= 2 ? decay : no_decay).params.push_back(p);
  std::vector<ParamGroup> out;
  if (!decay.params.empty()) out.push_back(std::move(decay));
  if (!no_decay.params.empty()) out.push_back(std::move(no_decay));
  return out;
}

std::vector<ParamGroup> weight_decay_groups(const Module& module, double weight_decay, double lr) {
  return weight_decay_groups(module.named_parameters(), weight_decay, lr);
}

}  // namespace minidl
