// The fast batch-norm kernels (contracts and the math in batchnorm.h).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/batchnorm_slabs.h"
#include "kernels/cpu/bn_lanes.h"
#include "kernels/cpu/elementwise.h"  // kParallelGrain
#include "tensor/error.h"

// The lane vectors of bn_lanes.h never cross a call boundary (all inlined); GCC still notes
// that their ABI would differ on AVX-512.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace minidl::cpu {

// MINIDL_BN_LAYOUT=rows|slabs forces a layout where the caller left it automatic. A bad
// value throws on every call (the static is initialised again), so it cannot be missed.
bool bn_use_slabs(BnLayout layout, int64_t N, int64_t HW) {
  static const BnLayout env = [] {
    const char* v = std::getenv("MINIDL_BN_LAYOUT");
    if (!v || !*v || !std::strcmp(v, "auto")) return BnLayout::automatic;
    if (!std::strcmp(v, "rows")) return BnLayout::rows;
    if (!std::strcmp(v, "slabs")) return BnLayout::slabs;
    throw Error(detail::concat("MINIDL_BN_LAYOUT='", v, "' is not a batch-norm layout; allowed: rows, slabs, auto"));
  }();
  if (layout == BnLayout::automatic) layout = env;
  return layout == BnLayout::slabs || (layout == BnLayout::automatic && N * HW <= kBnSlabBlockValues);
}

namespace {

// Rows r = n*C + c of [N, C, HW]: y[row] = epilogue(x[row] * scale[c] + shift[c]), one
// eval_affine_row (batchnorm.h) per row: the BN output rounded to T first, then + residual,
// then relu -- the same roundings as the unfused ops.

// One channel's mean and M2 = sum (x - mean)^2 over its N rows of HW. Each row (of at least
// two lane vectors) gets its own
// mean and M2 (the second sweep reads the row from L1), and rows are merged exactly:
//   M2 = sum_n M2_n + HW * sum_n (mean_n - mean)^2.
// Unlike sum(x^2) - M mean^2 this loses nothing when |mean| >> std.
template <class T>
void channel_stats(const T* x, int64_t N, int64_t C, int64_t HW, int64_t c, std::vector<double>& row_mean,
                   double& mean, double& m2) {
  double total = 0;
  m2 = 0;
  if (HW < 2 * kLanes<T>) {
    // Rows too short for lanes (ResNet's 4x4 and 2x2 stages): the per-row bookkeeping would
    // cost more than it saves, and the channel (N*HW values) sits in L1 anyway, so the
    // textbook two passes in double: the mean, then squared deviations from it.
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) total += x[(n * C + c) * HW + i];
    mean = total / double(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) m2 += (x[(n * C + c) * HW + i] - mean) * (x[(n * C + c) * HW + i] - mean);
    return;
  }
  for (int64_t n = 0; n < N; ++n) {
    const T* p = x + (n * C + c) * HW;
    const double rm = lane_sum<T>(HW, [p](auto ld) { return ld(p); }) / double(HW);
    const T rmt = static_cast<T>(rm);
    // Deviations from the row mean rounded to T: the rounding shifts every deviation by the
    // same small constant d, which adds HW d^2 to M2 -- removed by the exact correction below.
    double dev, sq;
    lane_sum2<T>(
        HW, [p, rmt](auto ld) { return ld(p) - rmt; },
        [p, rmt](auto ld) { return (ld(p) - rmt) * (ld(p) - rmt); }, dev, sq);
    m2 += sq - dev * dev / double(HW);
    row_mean[n] = rmt + dev / double(HW);
    total += row_mean[n];
  }
  mean = total / double(N);
  for (int64_t n = 0; n < N; ++n) m2 += double(HW) * (row_mean[n] - mean) * (row_mean[n] - mean);
}

}  // namespace

template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, double eps,
                             double momentum, T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                             const T* residual, bool relu, BnLayout layout) {
  if (bn_use_slabs(layout, N, HW))
    return batchnorm_forward_train_slabs(x, gamma, beta, N, C, HW, eps, momentum, y, save_mean, save_invstd,
                                         running_mean, running_var, residual, relu);
  const double M = double(N) * HW;
  const EvalAffineRowFn<T> normalise = pick_eval_affine_row<T>(residual != nullptr, relu);
#pragma omp parallel if (N * C * HW > kParallelGrain)
  {
    std::vector<double> row_mean(N);
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      double mean, m2;
      channel_stats(x, N, C, HW, c, row_mean, mean, m2);
      const double var = std::max(m2, 0.0) / M;
      const double invstd = 1.0 / std::sqrt(var + eps);
      const double scale = double(gamma[c]) * invstd, shift = double(beta[c]) - mean * scale;
      // Normalise while this channel's N*HW values are still in L2.
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        normalise(x + off, residual ? residual + off : nullptr, y + off, HW, T(scale), T(shift));
      }
      store_channel_stats(c, mean, var, invstd, M, momentum, save_mean, save_invstd, running_mean, running_var);
    }
  }
}

template <class T>
void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                            int64_t N, int64_t C, int64_t HW, double eps, T* y, const T* residual, bool relu,
                            BnLayout layout) {
  // Eval has no reductions: the slabs only pay where rows are short (per-row calls on 4 or 16
  // values); on long rows their per-column scale/shift loads cost ~4 % (bench_memory_ops).
  const bool slabs = layout == BnLayout::automatic ? HW < 32 && bn_use_slabs(layout, N, HW)
                                                   : bn_use_slabs(layout, N, HW);
  if (slabs)
    return batchnorm_forward_eval_slabs(x, gamma, beta, running_mean, running_var, N, C, HW, eps, y, residual, relu);
  std::vector<T> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c)
    eval_scale_shift(gamma[c], beta[c], running_mean[c], running_var[c], eps, scale[c], shift[c]);
  const EvalAffineRowFn<T> normalise = pick_eval_affine_row<T>(residual != nullptr, relu);
#pragma omp parallel for schedule(static) if (N * C * HW > kParallelGrain)
  for (int64_t row = 0; row < N * C; ++row) {
    const int64_t c = row % C, off = row * HW;
    normalise(x + off, residual ? residual + off : nullptr, y + off, HW, scale[c], shift[c]);
  }
}

namespace {

// dy masked by relu's backward where the fused forward had a relu (kMask); ld loads one
// value or a lane vector (bn_lanes.h).
template <bool kMask, class T, class Load>
inline auto masked(const T* dy, const T* out, Load ld) {
  if constexpr (kMask) return where_positive(ld(out), ld(dy));
  else return ld(dy);
}

template <bool kMask, class T>
void backward_impl(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N, int64_t C,
                   int64_t HW, bool training, T* dx, T* dgamma, T* dbeta, const T* out, T* d_residual) {
  const double M = double(N) * HW;
#pragma omp parallel for schedule(static) if (N * C * HW > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    const T mu = mean[c];
    const double is = invstd[c];
    // Sweep 1: sum dy' and sum dy' (x - mean), dy' the masked gradient.
    double sum_dy = 0, sum_dy_xmu = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * HW;
      const T *d = dy + off, *p = x + off, *o = kMask ? out + off : nullptr;
      double a, b;
      lane_sum2<T>(
          HW, [d, o](auto ld) { return masked<kMask>(d, o, ld); },
          [d, o, p, mu](auto ld) { return masked<kMask>(d, o, ld) * (ld(p) - mu); }, a, b);
      sum_dy += a;
      sum_dy_xmu += b;
    }
    const double sum_dy_xhat = sum_dy_xmu * is;
    if (dgamma) dgamma[c] = static_cast<T>(sum_dy_xhat);
    if (dbeta) dbeta[c] = static_cast<T>(sum_dy);
    if (!dx && !d_residual) continue;
    // Sweep 2: dx = g dy' - k (x - mean) - e, with g = gamma invstd, k = g invstd sum(dy' xhat) / M
    // and e = g sum(dy') / M (all zero but g in eval mode, where the statistics are constants).
    const auto [tg, tk, te] = bn_grad_coeffs(gamma[c], is, sum_dy, sum_dy_xhat, M, training);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * HW;
      const T *d = dy + off, *p = x + off, *o = kMask ? out + off : nullptr;
      if (d_residual) {
        T* r = d_residual + off;
        for (int64_t i = 0; i < HW; ++i) r[i] = masked<kMask>(d, o, ScalarLoad<T>{i});
      }
      if (dx) {
        T* q = dx + off;
        if (training)
          for (int64_t i = 0; i < HW; ++i) q[i] = tg * masked<kMask>(d, o, ScalarLoad<T>{i}) - tk * (p[i] - mu) - te;
        else
          for (int64_t i = 0; i < HW; ++i) q[i] = tg * masked<kMask>(d, o, ScalarLoad<T>{i});
      }
    }
  }
}

}  // namespace

template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N, int64_t C,
                        int64_t HW, bool training, T* dx, T* dgamma, T* dbeta, const T* relu_out, T* d_residual,
                        BnLayout layout) {
  if (bn_use_slabs(layout, N, HW))
    return batchnorm_backward_slabs(dy, x, gamma, mean, invstd, N, C, HW, training, dx, dgamma, dbeta, relu_out,
                                    d_residual);
  if (relu_out)
    backward_impl<true>(dy, x, gamma, mean, invstd, N, C, HW, training, dx, dgamma, dbeta, relu_out, d_residual);
  else
    backward_impl<false>(dy, x, gamma, mean, invstd, N, C, HW, training, dx, dgamma, dbeta, relu_out, d_residual);
}

#define MINIDL_INSTANTIATE(T)                                                                                       \
  template void batchnorm_forward_train<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, double, double, \
                                           T*, T*, T*, T*, T*, const T*, bool, BnLayout);                                     \
  template void batchnorm_forward_eval<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,       \
                                          int64_t, double, T*, const T*, bool, BnLayout);                                     \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,  \
                                      bool, T*, T*, T*, const T*, T*, BnLayout);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
