#include "layers/adamw.h"

#include <cmath>

#include "autograd/op_util.h"
#include "kernels/cpu/bn_lanes.h"  // lane vectors
#include "tensor/factory.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/optim.h"
#endif

#pragma GCC diagnostic ignored "-Wpsabi"  // lane vectors stay inside inlined code

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
  if (it == state.end()) it = state.emplace(key, zeros(like.shape(), like.dtype(), like.device())).first;
  return it->second;
}
}  // namespace

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWOptions& o)
    : Optimizer("AdamW", std::move(groups), checked(o).lr, o.weight_decay), options(o) {}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o)
    : AdamW(single_group(std::move(params)), o) {}

namespace {

// The update's scalars, hoisted out of the element loop in the parameter's type.
template <class T>
struct AdamWScalars {
  T decay, b1, ob1, b2, ob2, step_size, inv_bc2_sqrt, eps;
};

// One element (V = T) or one lane vector (V = Lanes<T>) of the update, exactly torch's
// sequence: p *= decay; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g g;
// p -= step_size m / (sqrt(v) / sqrt(bc2) + eps), the division by sqrt(bc2) done as a
// multiplication by its reciprocal (within an ulp of torch's). sqrt_fn is std::sqrt or
// lane_sqrt.
template <class V, class T, class Sqrt>
inline void adamw_element(V& w, V g, V& m, V& v, const AdamWScalars<T>& k, Sqrt sqrt_fn) {
  w = w * k.decay;
  m = k.b1 * m + k.ob1 * g;
  v = k.b2 * v + k.ob2 * g * g;
  w = w - k.step_size * m / (sqrt_fn(v) * k.inv_bc2_sqrt + k.eps);
}

// One vectorisable pass over a tensor: the body on lane vectors (a scalar sqrt would keep
// GCC from vectorising, since it may set errno), the tail element by element. Both compute
// each element with the same roundings, so where an element falls does not matter.
template <class T>
void adamw_pass(T* w, const T* g, T* m, T* v, int64_t n, const AdamWScalars<T>& k) {
  constexpr int64_t L = cpu::kLanes<T>;
  const int64_t body = n / L * L;
  using V = cpu::Lanes<T>;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < body; i += L) {
    V wv = cpu::load_lanes(w + i), gv = cpu::load_lanes(g + i), mv = cpu::load_lanes(m + i), vv = cpu::load_lanes(v + i);
    adamw_element(wv, gv, mv, vv, k, [](V x) { return cpu::lane_sqrt<T>(x); });
    cpu::store_lanes(w + i, wv);
    cpu::store_lanes(m + i, mv);
    cpu::store_lanes(v + i, vv);
  }
  for (int64_t i = body; i < n; ++i) adamw_element(w[i], g[i], m[i], v[i], k, [](T x) { return std::sqrt(x); });
}

}  // namespace

void AdamW::update(const ParamGroup& group, Tensor& p, const Tensor& grad, ParamState& state) {
  // The step count stays on the host on every device (as torch keeps it): the bias
  // corrections below are host scalars, and reading a device counter would stall the GPU.
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
#ifdef MINIDL_WITH_CUDA
  if (p.device() == Device::CUDA) {
    detail::check_cuda_float32("AdamW::step", p, "parameter");
    const cuda::AdamWScalarsF32 k{float(decay), float(b1),        float(1 - b1),          float(b2),
                                  float(1 - b2), float(step_size), float(1.0 / bc2_sqrt), float(options.eps)};
    cuda::adamw_step_f32(p.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), p.numel(), k);
    return;
  }
#endif
  dispatch_float(p.dtype(), "AdamW::step", [&](auto tag) {
    using T = decltype(tag);
    const AdamWScalars<T> k{T(decay), T(b1),        T(1 - b1),          T(b2),
                            T(1 - b2), T(step_size), T(1.0 / bc2_sqrt), T(options.eps)};
    adamw_pass<T>(p.data<T>(), grad.data<T>(), m.data<T>(), v.data<T>(), p.numel(), k);
  });
}

}  // namespace minidl
