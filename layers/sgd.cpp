#include "layers/sgd.h"

#include "autograd/op_util.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/optim.h"
#endif

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
// One pass over a tensor. Each variant (decay or not; no momentum, first momentum step,
// later steps; nesterov) is its own loop, so every loop is branch-free and vectorises.
template <class T, bool kDecay, int kMomentum /* 0 none, 1 first step, 2 later */, bool kNesterov>
void sgd_loop(T* w, const T* dw, T* b, int64_t n, T lr, T wd, T mom, T keep) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    T g = dw[i];
    if constexpr (kDecay) g += wd * w[i];
    if constexpr (kMomentum == 1) b[i] = g;
    if constexpr (kMomentum == 2) b[i] = mom * b[i] + keep * g;
    if constexpr (kMomentum != 0) g = kNesterov ? g + mom * b[i] : b[i];
    w[i] -= lr * g;
  }
}

template <class T, bool kDecay>
void sgd_dispatch(T* w, const T* dw, T* b, int64_t n, T lr, T wd, T mom, T keep, bool first, bool nesterov) {
  if (!b) return sgd_loop<T, kDecay, 0, false>(w, dw, b, n, lr, wd, mom, keep);
  if (first)
    return nesterov ? sgd_loop<T, kDecay, 1, true>(w, dw, b, n, lr, wd, mom, keep)
                    : sgd_loop<T, kDecay, 1, false>(w, dw, b, n, lr, wd, mom, keep);
  return nesterov ? sgd_loop<T, kDecay, 2, true>(w, dw, b, n, lr, wd, mom, keep)
                  : sgd_loop<T, kDecay, 2, false>(w, dw, b, n, lr, wd, mom, keep);
}

template <class T>
void sgd_pass(T* w, const T* dw, T* b, int64_t n, T lr, T wd, T mom, T keep, bool first, bool nesterov) {
  if (wd != T(0)) sgd_dispatch<T, true>(w, dw, b, n, lr, wd, mom, keep, first, nesterov);
  else sgd_dispatch<T, false>(w, dw, b, n, lr, wd, mom, keep, first, nesterov);
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
    // The buffer lives beside the parameter (on its device); the first step sets it.
    if (first) it = state.emplace("momentum_buffer", Tensor::empty(p.shape(), p.dtype(), p.device())).first;
    buf = it->second;
  }
#ifdef MINIDL_WITH_CUDA
  if (p.device() == Device::CUDA) {
    detail::check_cuda_float32("SGD::step", p, "parameter");
    cuda::SgdScalars k;
    k.lr = float(group.lr);
    k.weight_decay = float(group.weight_decay);
    k.momentum = float(options.momentum);
    k.keep = float(1.0 - options.dampening);
    k.first = first;
    k.nesterov = options.nesterov;
    cuda::sgd_step_f32(p.data<float>(), grad.data<float>(), use_momentum ? buf.data<float>() : nullptr, p.numel(), k);
    return;
  }
#endif
  dispatch_float(p.dtype(), "SGD::step", [&](auto tag) {
    using T = decltype(tag);
    sgd_pass<T>(p.data<T>(), grad.data<T>(), use_momentum ? buf.data<T>() : nullptr, p.numel(), T(group.lr),
                T(group.weight_decay), T(options.momentum), T(1.0 - options.dampening), first, options.nesterov);
  });
}

}  // namespace minidl
