#include "kernels/cpu/softmax.h"

#include <cmath>

namespace minidl::cpu {

template <class T>
void log_softmax_forward(const T* x, int64_t N, int64_t C, T* y) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t n = 0; n < N; ++n) {
    const T* r = x + n * C;
    double m = r[0];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, double(r[c]));
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(r[c] - m);
    const double lse = m + std::log(s);
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = static_cast<T>(r[c] - lse);
  }
}

template <class T>
void log_softmax_backward(const T* dy, const T* y, int64_t N, int64_t C, T* dx) {
#pragma omp parallel for schedule(static) if (N * C > (1 << 15))
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += dy[n * C + c];
    for (int64_t c = 0; c < C; ++c) dx[n * C + c] = static_cast<T>(dy[n * C + c] - std::exp(double(y[n * C + c])) * s);
  }
}

template <class T>
double cross_entropy_forward(const T* x, const int64_t* labels, int64_t N, int64_t C, double smoothing, T* logp) {
  log_softmax_forward(x, N, C, logp);
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* r = logp + n * C;
    double sum_all = 0;
    for (int64_t c = 0; c < C; ++c) sum_all += r[c];
    total += -(1 - smoothing) * r[labels[n]] - smoothing / C * sum_all;
  }
  return total / N;
}

template <class T>
void cross_entropy_backward(const T* logp, const int64_t* labels, int64_t N, int64_t C, double smoothing, double scale,
                            T* dx) {
  const double k = scale / N;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double q = (c == labels[n] ? 1 - smoothing : 0.0) + smoothing / C;
      dx[n * C + c] = static_cast<T>(k * (std::exp(double(logp[n * C + c])) - q));
    }
}

#define MINIDL_INSTANTIATE(T)                                                                                     \
  template void log_softmax_forward<T>(const T*, int64_t, int64_t, T*);                                          \
  template void log_softmax_backward<T>(const T*, const T*, int64_t, int64_t, T*);                               \
  template double cross_entropy_forward<T>(const T*, const int64_t*, int64_t, int64_t, double, T*);              \
  template void cross_entropy_backward<T>(const T*, const int64_t*, int64_t, int64_t, double, double, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
