#include "layers/sgd.h"

namespace minidl {

namespace {
const SGDOptions& checked(const SGDOptions& o) {
  MINIDL_CHECK(o.momentum >= 0, "SGD: momentum must be >= 0, got ", o.momentum);
  MINIDL_CHECK(o.dampening >= 0 && o.dampening <= 1, "SGD: dampening must be in [0, 1], got ", o.dampening);
  MINIDL_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
               "SGD: nesterov needs momentum > 0 and dampening == 0, got momentum ", o.momentum, " and dampening ",
               o.dampening);
  return o;
}
}  // namespace

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& o)
    : Optimizer("SGD", std::move(groups), checked(o).lr, o.weight_decay), options(o) {}

SGD::SGD(std::vector<Tensor> params, const SGDOptions& o) : SGD(single_group(std::move(params)), o) {}

void SGD::update(const ParamGroup& group, Tensor& p, const Tensor& grad, ParamState& state) {
  const bool use_momentum = options.momentum != 0;
  bool first = false;
  Tensor buf;
  if (use_momentum) {
    auto it = state.find("momentum_buffer");
    first = it == state.end();
    if (first) it = state.emplace("momentum_buffer", Tensor::empty(p.shape(), p.dtype())).first;
    buf = it->second;
  }
  dispatch_float(p.dtype(), "SGD::step", [&](auto tag) {
    using T = decltype(tag);
    T* w = p.data<T>();
    const T* dw = grad.data<T>();
    T* b = use_momentum ? buf.data<T>() : nullptr;
    const T lr = T(group.lr), wd = T(group.weight_decay), mom = T(options.momentum);
    const T keep = T(1.0 - options.dampening);
    const int64_t n = p.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
      T g = dw[i];
      if (wd != T(0)) g += wd * w[i];
      if (b) {
        b[i] = first ? g : mom * b[i] + keep * g;
        g = options.nesterov ? g + mom * b[i] : b[i];
      }
      w[i] -= lr * g;
    }
  });
}

}  // namespace minidl
