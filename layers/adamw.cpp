#include "layers/adamw.h"

#include <cmath>

#include "tensor/factory.h"

namespace minidl {

namespace {
const AdamWOptions& checked(const AdamWOptions& o) {
  MINIDL_CHECK(o.beta1 >= 0 && o.beta1 < 1, "AdamW: beta1 must be in [0, 1), got ", o.beta1);
  MINIDL_CHECK(o.beta2 >= 0 && o.beta2 < 1, "AdamW: beta2 must be in [0, 1), got ", o.beta2);
  MINIDL_CHECK(o.eps >= 0, "AdamW: eps must be >= 0, got ", o.eps);
  return o;
}

Tensor& state_tensor(ParamState& state, const std::string& key, const Tensor& like) {
  auto it = state.find(key);
  if (it == state.end()) it = state.emplace(key, zeros(like.shape(), like.dtype())).first;
  return it->second;
}
}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
    : Optimizer("AdamW", std::move(groups), checked(o).lr, o.weight_decay), options(o) {}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o)
    : AdamW(single_group(std::move(params)), o) {}

void AdamW::update(const ParamGroup& group, Tensor& p, const Tensor& grad, ParamState& state) {
  auto step_it = state.find("step");
  if (step_it == state.end()) step_it = state.emplace("step", zeros({}, DType::Int64)).first;
  int64_t& t = step_it->second.data<int64_t>()[0];
  ++t;
  Tensor& m = state_tensor(state, "exp_avg", p);
  Tensor& v = state_tensor(state, "exp_avg_sq", p);
  // Scalars in double, as torch computes them in Python floats.
  const double b1 = options.beta1, b2 = options.beta2;
  const double step_size = group.lr / (1.0 - std::pow(b1, double(t)));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, double(t)));
  const double decay = 1.0 - group.lr * group.weight_decay;
  dispatch_float(p.dtype(), "AdamW::step", [&](auto tag) {
    using T = decltype(tag);
    T* w = p.data<T>();
    const T* g = grad.data<T>();
    T* mm = m.data<T>();
    T* vv = v.data<T>();
    const T tb1 = T(b1), tb2 = T(b2), ob1 = T(1 - b1), ob2 = T(1 - b2);
    const T tstep = T(step_size), tbc2 = T(bc2_sqrt), teps = T(options.eps), tdecay = T(decay);
    const int64_t n = p.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
      w[i] *= tdecay;
      mm[i] = tb1 * mm[i] + ob1 * g[i];
      vv[i] = tb2 * vv[i] + ob2 * g[i] * g[i];
      w[i] -= tstep * mm[i] / (std::sqrt(vv[i]) / tbc2 + teps);
    }
  });
}

}  // namespace minidl
