// Sequential: runs its children in order, feeding each one's output to the next. Children
// are named "0", "1", ... as in torch.nn.Sequential, so a ResNet stage's blocks get keys
// such as "layer1.0.conv1.weight".
#pragma once
#include <initializer_list>

#include "layers/module.h"

namespace minidl {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);

  // Appends `m` under the next index name and returns it with its own type.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    register_module(std::to_string(modules_.size()), m);
    modules_.push_back(m);
    return m;
  }

  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }
  // The i-th child; out of range is an error.
  std::shared_ptr<Module> operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace minidl
