// Batch normalisation over (N, H, W) per channel c, x viewed as [N, C, HW]:
//   training: mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), y = (x - mean_c) * rsqrt(var_c + eps) * gamma_c + beta_c
//             running_mean = (1 - m) * running_mean + m * mean_c
//             running_var  = (1 - m) * running_var  + m * var_c * M / (M - 1)   (unbiased), M = N*HW
//   eval:     the same with running_mean / running_var in place of the batch statistics.
// Backward, training (xhat = (x - mean) * invstd):
//   dbeta = sum dy, dgamma = sum dy * xhat, dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma)
// Backward, eval: dx = dy * gamma * invstd (statistics are constants).
#pragma once
#include <cstdint>

namespace minidl::cpu {

// Writes y, and the batch mean and invstd (saved for backward); updates running stats when
// running_mean/var are non-null.
template <class T>
void batchnorm_forward_train(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW, double eps,
                             double momentum, T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var);

template <class T>
void batchnorm_forward_eval(const T* x, const T* gamma, const T* beta, const T* running_mean, const T* running_var,
                            int64_t N, int64_t C, int64_t HW, double eps, T* y);

// dx, dgamma, dbeta may each be nullptr when not needed. In eval mode pass the running
// statistics as mean and invstd = rsqrt(running_var + eps), and training = false.
template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N, int64_t C,
                        int64_t HW, bool training, T* dx, T* dgamma, T* dbeta);

}  // namespace minidl::cpu
