// Batch normalisation over (N, H, W) per channel c, x viewed as [N, C, HW]:
//   training: mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), y = (x - mean_c) * rsqrt(var_c + eps) * gamma_c + beta_c
//             running_mean = (1 - m) * running_mean + m * mean_c
//             running_var  = (1 - m) * running_var  + m * var_c * M / (M - 1)   (unbiased), M = N*HW
//   eval:     the same with running_mean / running_var in place of the batch statistics.
// Backward, training (xhat = (x - mean) * invstd):
//   dbeta = sum dy, dgamma = sum dy * xhat, dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma)
// Backward, eval: dx = dy * gamma * invstd (statistics are constants).
//
// Fused epilogue (ResNet's conv -> BN -> ReLU and BN -> + identity -> ReLU):
//   out = relu(y + residual)   (residual and relu each optional)
// and in backward the incoming gradient is first masked, dy' = out > 0 ? dy : 0 (relu's
// backward), dy' is what the residual receives, and the formulas above run on dy'. The
// arithmetic is exactly that of the unfused ops (y rounded to T, then + residual, then
// relu), so the fused and unfused graphs agree bit for bit.
//
// Fast kernels, two layouts; in both each channel is reduced by one thread in an order fixed
// by the shape (results identical for any thread count). Rows (batchnorm.cpp): OpenMP over
// channels. Forward: one read of x for the
// statistics (per row of HW values: its mean, then its squared deviations while the row is
// in L1; rows merged exactly in double, Chan et al.) and one normalise sweep while the
// channel is still in L2. Backward: one reduction sweep (sum dy', sum dy' (x - mean)) and
// one sweep writing dx. Inner loops are lane sums over HW (bn_lanes.h) that vectorise.
// Slabs (batchnorm_slabs.cpp), used when one channel's N*HW values fit a slab block
// (kBnSlabBlockValues: every ResNet50 layer at 64x64, batch 32): OpenMP over blocks of
// channels, whose values for one sample n form one contiguous slab, reduced down the columns
// over n; far faster for short rows (and for the fused relu backward), no slower for long
// rows that fit.
// The *_reference kernels (batchnorm_reference.cpp) are the plain versions they are tested against.
#pragma once
#include <cmath>
#include <cstdint>

namespace minidl::cpu {

// Which loop structure the fast kernels use: automatic picks slabs when N*HW <=
// kBnSlabBlockValues (above that a slab block would not stay in L2 between the sweeps, and
// the forward's third sweep would go to memory), unless the environment variable
// MINIDL_BN_LAYOUT (read once) is rows or slabs (an A/B switch for end-to-end benchmarks).
// The eval forward (no reductions) takes the slabs automatically only for rows shorter than
// 32 values. Both are exact for any shape; the tests and the bench force one to compare them.
enum class BnLayout { automatic, rows, slabs };
constexpr int64_t kBnSlabBlockValues = 32768;  // of each input per slab block: 128 KiB in float
bool bn_use_slabs(BnLayout layout, int64_t N, int64_t HW);

// Writes y, and the batch mean and invstd (saved for backward); updates running stats when
// running_mean/var are non-null. residual (same shape as x) may be nullptr.
template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, double eps,
                             double momentum, T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var,
                             const T* residual = nullptr, bool relu = false, BnLayout layout = BnLayout::automatic);

template <class T>
void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                            int64_t N, int64_t C, int64_t HW, double eps, T* y, const T* residual = nullptr,
                            bool relu = false, BnLayout layout = BnLayout::automatic);

// dx, dgamma, dbeta may each be nullptr when not needed. In eval mode pass the running
// statistics as mean and invstd = rsqrt(running_var + eps), and training = false.
// relu_out: the fused forward's output (dy is masked where it is <= 0), or nullptr for no
// relu. d_residual: receives the masked dy (the residual's gradient), or nullptr.
template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N, int64_t C,
                        int64_t HW, bool training, T* dx, T* dgamma, T* dbeta, const T* relu_out = nullptr,
                        T* d_residual = nullptr, BnLayout layout = BnLayout::automatic);

// Channel c's statistics into the saved ones, and folded into the running ones (shared by
// the fast and the reference forward). M = N*HW values; var is the biased variance.
template <class T>
inline void store_channel_stats(int64_t c, double mean, double var, double invstd, double M, double momentum,
                                T* save_mean, T* save_invstd, T* running_mean, T* running_var) {
  save_mean[c] = static_cast<T>(mean);
  save_invstd[c] = static_cast<T>(invstd);
  if (running_mean) running_mean[c] = static_cast<T>((1 - momentum) * running_mean[c] + momentum * mean);
  if (running_var) {
    const double unbiased = M > 1 ? var * M / (M - 1) : var;
    running_var[c] = static_cast<T>((1 - momentum) * running_var[c] + momentum * unbiased);
  }
}

// Eval-mode (or any fixed-statistics) affine form y = x * scale + shift of channel c,
// shared by the row and slab layouts so both round alike.
template <class T>
inline void eval_scale_shift(T gamma, T beta, T running_mean, T running_var, double eps, T& scale, T& shift) {
  const double invstd = 1.0 / std::sqrt(double(running_var) + eps);
  const double s = double(gamma) * invstd;
  scale = T(s);
  shift = T(double(beta) - running_mean * s);
}

// One row of the eval-mode output with its epilogue: q[i] = relu?(p[i] * scale + shift
// (+ r[i])), in the order the unfused ops round (the affine form, then the residual, then
// relu). Shared by batchnorm_forward_eval and conv's fused epilogue (conv2d.h) so that both
// give the same bits. r may be nullptr when kResidual is false; q may be p.
template <bool kResidual, bool kRelu, class T>
inline void eval_affine_row(const T* p, const T* r, T* q, int64_t n, T scale, T shift) {
  for (int64_t i = 0; i < n; ++i) {
    T v = p[i] * scale + shift;
    if constexpr (kResidual) v = v + r[i];
    if constexpr (kRelu) v = v > 0 ? v : T(0);
    q[i] = v;
  }
}
template <class T>
using EvalAffineRowFn = void (*)(const T*, const T*, T*, int64_t, T, T);
template <class T>
EvalAffineRowFn<T> pick_eval_affine_row(bool residual, bool relu) {
  if (residual) return relu ? eval_affine_row<true, true, T> : eval_affine_row<true, false, T>;
  return relu ? eval_affine_row<false, true, T> : eval_affine_row<false, false, T>;
}

// Backward's per-channel coefficients, dx = g dy' - k (x - mean) - e, with g = gamma invstd,
// k = g invstd sum(dy' xhat) / M and e = g sum(dy') / M (k = e = 0 in eval mode, where the
// statistics are constants). Shared by both layouts.
template <class T>
struct BnGradCoeffs {
  T g, k, e;
};
template <class T>
inline BnGradCoeffs<T> bn_grad_coeffs(T gamma, double invstd, double sum_dy, double sum_dy_xhat, double M,
                                      bool training) {
  const double g = double(gamma) * invstd;
  if (!training) return {T(g), T(0), T(0)};
  return {T(g), T(g * invstd * sum_dy_xhat / M), T(g * sum_dy / M)};
}

// The plain kernels: the same contracts without the fused epilogue, double accumulation,
// one element at a time.
template <class T>
void batchnorm_forward_train_reference(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW,
                                       double eps, double momentum, T* y, T* save_mean, T* save_invstd,
                                       T* running_mean, T* running_var);
template <class T>
void batchnorm_forward_eval_reference(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                      const T* running_var, int64_t N, int64_t C, int64_t HW, double eps, T* y);
template <class T>
void batchnorm_backward_reference(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N,
                                  int64_t C, int64_t HW, bool training, T* dx, T* dgamma, T* dbeta);

}  // namespace minidl::cpu
