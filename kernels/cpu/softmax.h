// Row-wise log-softmax and cross-entropy on [N, C] logits, stable via log-sum-exp:
//   log_softmax(x)_c = x_c - m - log(sum_k exp(x_k - m)),  m = max_k x_k
//   backward: dx = dy - softmax(x) * sum_c dy_c
// Cross-entropy with label smoothing eps (PyTorch's definition), mean over the batch:
//   q_c = (1 - eps) [c == y] + eps / C,   loss_n = -sum_c q_c log_softmax(x_n)_c
//   dloss/dx_n = (softmax(x_n) - q) / N
#pragma once
#include <cstdint>

namespace minidl::cpu {

template <class T> void log_softmax_forward(const T* x, int64_t N, int64_t C, T* y);
// y is the forward output (log-probabilities).
template <class T> void log_softmax_backward(const T* dy, const T* y, int64_t N, int64_t C, T* dx);

// Returns the mean loss; writes log-probabilities into logp (saved for backward).
template <class T>
double cross_entropy_forward(const T* x, const int64_t* labels, int64_t N, int64_t C, double smoothing, T* logp);
// dx = scale * (softmax - q) / N, scale being the incoming gradient of the scalar loss.
template <class T>
void cross_entropy_backward(const T* logp, const int64_t* labels, int64_t N, int64_t C, double smoothing, double scale,
                            T* dx);

}  // namespace minidl::cpu
