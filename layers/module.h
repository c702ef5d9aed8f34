// Module: the building block of a network. A module owns named parameters (tensors the
// optimizer trains), named buffers (state that is saved but not trained, such as batch
// norm's running statistics) and named child modules. Names compose with dots into the
// keys that torchvision uses ("layer1.0.conv1.weight", "bn1.running_mean"), so weights
// converted from PyTorch line up one to one.
//
// Registered tensors are handles: the module keeps one copy of the handle, the subclass's
// member field another, and both point at the same TensorImpl. An optimizer step or a
// checkpoint load that writes in place is therefore seen through either. Modules are used
// through std::shared_ptr because parents hold their children that way.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace minidl {

// An ordered list of (name, tensor): what named_parameters() and state_dict() return.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  // `type_name` is what error messages call this module ("Conv2d", "BatchNorm2d", ...).
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation. The base version throws: a module without forward is a container.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  const std::string& type_name() const { return type_name_; }

  // Registration. Names must be non-empty, free of dots and unique within this module
  // (across parameters, buffers and children alike). register_parameter marks the tensor
  // requires_grad; the returned handle is the registered one.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

  // Recursive listings in PyTorch's order: this module's own entries first (in registration
  // order), then each child's, depth first. A tensor shared by two modules is listed once
  // (under its first name) by named_parameters/parameters, as torch does.
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  // Parameters, then buffers, of each module, depth first: exactly torch's state_dict() keys
  // and order. The tensors are the live handles, not copies.
  NamedTensors state_dict() const;

  // Training mode switches batch norm to batch statistics and enables dropout. Reaches
  // every descendant.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops every parameter's accumulated gradient (torch's set_to_none behaviour).
  void zero_grad();

  // Converts every floating parameter and buffer to `dtype` in place (the handles held by
  // member fields follow, since the TensorImpl itself is updated). Int64 buffers stay.
  void to(DType dtype);
  // Moves every parameter and buffer (int64 ones such as num_batches_tracked included) to
  // `device` in place: each TensorImpl stays and gets the moved storage, so the handles held
  // by member fields and by optimizers follow. Accumulated gradients move with their
  // parameters. A no-op for tensors already there. Move the model before running it; an
  // optimizer may be made before or after (its state follows, see layers/optim.h).
  void to(Device device);
  // The device of the parameters and buffers (CPU for a module without any); an Error when
  // they are spread over several devices.
  Device device() const;

 private:
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  void collect(const std::string& prefix, bool params, bool buffers, bool recurse, NamedTensors& out) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace minidl
