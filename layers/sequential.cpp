#include "layers/sequential.h"

namespace minidl {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (const auto& m : modules) push_back(m);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;  // an empty Sequential is the identity, as in torch
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

std::shared_ptr<Module> Sequential::operator[](size_t i) const {
  MINIDL_CHECK(i < modules_.size(), "Sequential: index ", i, " is out of range for ", modules_.size(), " modules");
  return modules_[i];
}

}  // namespace minidl
