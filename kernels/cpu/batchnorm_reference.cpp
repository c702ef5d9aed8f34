// The plain batch-norm kernels: double accumulation, the textbook two passes for the
// statistics, no fusion. The fast kernels in batchnorm.cpp are tested against these.
#include "kernels/cpu/batchnorm.h"

#include <cmath>

#include "kernels/cpu/elementwise.h"  // kParallelGrain

namespace minidl::cpu {

template <class T>
void batchnorm_forward_train_reference(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, double eps,
                             double momentum, T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var) {
  const double M = double(N) * HW;
#pragma omp parallel for schedule(static) if (N * C * HW > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    // Two passes (mean, then squared deviations) in double: stable for large means.
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) s += p[i];
    }
    const double mean = s / M;
    double ss = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) ss += (p[i] - mean) * (p[i] - mean);
    }
    const double var = ss / M;
    const double invstd = 1.0 / std::sqrt(var + eps);
    const double scale = double(gamma[c]) * invstd, shift = double(beta[c]) - mean * scale;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * HW;
      T* q = y + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) q[i] = static_cast<T>(p[i] * scale + shift);
    }
    store_channel_stats(c, mean, var, invstd, M, momentum, save_mean, save_invstd, running_mean, running_var);
  }
}

template <class T>
void batchnorm_forward_eval_reference(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                            int64_t N, int64_t C, int64_t HW, double eps, T* y) {
#pragma omp parallel for collapse(2) schedule(static) if (N * C * HW > kParallelGrain)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double invstd = 1.0 / std::sqrt(double(running_var[c]) + eps);
      const double scale = double(gamma[c]) * invstd, shift = double(beta[c]) - running_mean[c] * scale;
      const T* p = x + (n * C + c) * HW;
      T* q = y + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) q[i] = static_cast<T>(p[i] * scale + shift);
    }
}

template <class T>
void batchnorm_backward_reference(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N, int64_t C,
                        int64_t HW, bool training, T* dx, T* dgamma, T* dbeta) {
  const double M = double(N) * HW;
#pragma omp parallel for schedule(static) if (N * C * HW > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    const double mu = mean[c], is = invstd[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* d = dy + (n * C + c) * HW;
      const T* p = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) {
        sum_dy += d[i];
        sum_dy_xhat += d[i] * (p[i] - mu) * is;
      }
    }
    if (dgamma) dgamma[c] = static_cast<T>(sum_dy_xhat);
    if (dbeta) dbeta[c] = static_cast<T>(sum_dy);
    if (!dx) continue;
    const double g = gamma[c] * is;
    for (int64_t n = 0; n < N; ++n) {
      const T* d = dy + (n * C + c) * HW;
      const T* p = x + (n * C + c) * HW;
      T* q = dx + (n * C + c) * HW;
      if (training) {
        for (int64_t i = 0; i < HW; ++i) {
          const double xhat = (p[i] - mu) * is;
          q[i] = static_cast<T>(g * (d[i] - sum_dy / M - xhat * sum_dy_xhat / M));
        }
      } else {
        for (int64_t i = 0; i < HW; ++i) q[i] = static_cast<T>(g * d[i]);
      }
    }
  }
}

#define MINIDL_INSTANTIATE(T)                                                                                       \
  template void batchnorm_forward_train_reference<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, double, double, \
                                           T*, T*, T*, T*, T*);                                                     \
  template void batchnorm_forward_eval_reference<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,       \
                                          int64_t, double, T*);                                                     \
  template void batchnorm_backward_reference<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,  \
                                      bool, T*, T*, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
