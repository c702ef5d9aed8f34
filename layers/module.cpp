#include "layers/module.h"

#include <unordered_set>

#include "autograd/grad_mode.h"
#include "autograd/node.h"

namespace minidl {

Tensor Module::forward(const Tensor&) {
  throw Error(detail::concat(type_name_, ": forward() is not implemented (a container module; call its children)"));
}

void Module::check_new_name(const std::string& name, const char* what) const {
  MINIDL_CHECK(!name.empty(), type_name_, ": ", what, " name must not be empty");
  MINIDL_CHECK(name.find('.') == std::string::npos, type_name_, ": ", what, " name '", name,
               "' must not contain '.' (dots join the names of nested modules)");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == name) return true;
    return false;
  };
  const char* clash = taken(params_) ? "a parameter" : taken(buffers_) ? "a buffer" : taken(children_) ? "a child module" : nullptr;
  MINIDL_CHECK(clash == nullptr, type_name_, ": cannot register ", what, " '", name, "': the name is already ", clash);
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name, "parameter");
  MINIDL_CHECK(t.defined(), type_name_, ": parameter '", name, "' is an undefined tensor");
  MINIDL_CHECK(is_floating_compute(t.dtype()), type_name_, ": parameter '", name, "' has dtype ",
               dtype_name(t.dtype()), "; parameters must be float32 or float64");
  MINIDL_CHECK(t.is_leaf(), type_name_, ": parameter '", name, "' was produced by op '", t.grad_fn()->name,
               "'; parameters must be leaves (detach() it first)");
  t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "buffer");
  MINIDL_CHECK(t.defined(), type_name_, ": buffer '", name, "' is an undefined tensor");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> child) {
  check_new_name(name, "child module");
  MINIDL_CHECK(child != nullptr, type_name_, ": child module '", name, "' is null");
  MINIDL_CHECK(child.get() != this, type_name_, ": child module '", name, "' is the module itself");
  children_.emplace_back(name, std::move(child));
}

void Module::collect(const std::string& prefix, bool params, bool buffers, bool recurse, NamedTensors& out) const {
  if (params)
    for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
  if (buffers)
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, buffers, true, out);
}

namespace {
// Keeps the first occurrence of each tensor (a weight tied between two modules is one parameter).
NamedTensors unique_tensors(NamedTensors all) {
  std::unordered_set<const TensorImpl*> seen;
  NamedTensors out;
  for (auto& entry : all)
    if (seen.insert(entry.second.impl_ptr().get()).second) out.push_back(std::move(entry));
  return out;
}
}  // namespace

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors all;
  collect("", true, false, recurse, all);
  return unique_tensors(std::move(all));
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& entry : named_parameters(recurse)) out.push_back(entry.second);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors all;
  collect("", false, true, recurse, all);
  return unique_tensors(std::move(all));
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, true, out);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& entry : children_) entry.second->train(on);
}

void Module::zero_grad() {
  for (auto& entry : named_parameters()) entry.second.zero_grad();
}

namespace {
// Points t's shared TensorImpl at `moved`'s data, so every handle (member fields,
// optimizers) sees the change.
void rebind(Tensor& t, const Tensor& moved) {
  TensorImpl& impl = t.impl();
  impl.storage = moved.storage();
  impl.shape = moved.shape();
  impl.strides = moved.strides();
  impl.offset = moved.offset();
  impl.dtype = moved.dtype();
}
}  // namespace

void Module::to(DType dtype) {
  MINIDL_CHECK(is_floating_compute(dtype), type_name_, ": to(", dtype_name(dtype),
               ") is not supported; modules convert to float32 or float64");
  NoGradGuard no_grad;
  auto convert = [&](Tensor& t) {
    if (!is_floating_compute(t.dtype()) || t.dtype() == dtype) return;
    rebind(t, t.detach().to(dtype));
    t.impl().grad.reset();
  };
  for (auto& entry : params_) convert(entry.second);
  for (auto& entry : buffers_) convert(entry.second);
  for (auto& entry : children_) entry.second->to(dtype);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  auto move = [&](Tensor& t) {
    if (t.device() == device) return;
    rebind(t, t.detach().to(device));
    if (auto& g = t.impl().grad) g = Tensor(g).detach().to(device).impl_ptr();
  };
  for (auto& entry : params_) move(entry.second);
  for (auto& entry : buffers_) move(entry.second);
  for (auto& entry : children_) entry.second->to(device);
}

Device Module::device() const {
  const NamedTensors all = state_dict();
  if (all.empty()) return Device::CPU;
  const Device first = all.front().second.device();
  for (const auto& [name, t] : all)
    MINIDL_CHECK(t.device() == first, type_name_, ": '", all.front().first, "' is on ", device_name(first), " but '",
                 name, "' on ", device_name(t.device()), "; move the whole module with to(Device)");
  return first;
}

}  // namespace minidl
