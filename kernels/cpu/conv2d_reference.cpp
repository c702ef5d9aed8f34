// The convolution's definition as nested loops (double accumulation): the oracle the tests
// compare conv2d_forward / conv2d_backward_* against.
#include <algorithm>

#include "kernels/cpu/conv2d.h"

namespace minidl::cpu {

template <class T>
void conv2d_reference_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t i = 0; i < g.OH; ++i)
        for (int64_t j = 0; j < g.OW; ++j) {
          double s = bias ? bias[o] : 0.0;
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t p = 0; p < g.KH; ++p)
              for (int64_t q = 0; q < g.KW; ++q) {
                int64_t h = i * g.SH - g.PH + p, ww = j * g.SW - g.PW + q;
                if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                s += double(w[((o * g.C + c) * g.KH + p) * g.KW + q]) * x[((n * g.C + c) * g.H + h) * g.W + ww];
              }
          y[((n * g.O + o) * g.OH + i) * g.OW + j] = static_cast<T>(s);
        }
}

template <class T>
void conv2d_reference_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  std::fill(dx, dx + g.N * g.C * g.H * g.W, T(0));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t o = 0; o < g.O; ++o)
      for (int64_t i = 0; i < g.OH; ++i)
        for (int64_t j = 0; j < g.OW; ++j) {
          const T d = dy[((n * g.O + o) * g.OH + i) * g.OW + j];
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t p = 0; p < g.KH; ++p)
              for (int64_t q = 0; q < g.KW; ++q) {
                int64_t h = i * g.SH - g.PH + p, ww = j * g.SW - g.PW + q;
                if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                dx[((n * g.C + c) * g.H + h) * g.W + ww] += d * w[((o * g.C + c) * g.KH + p) * g.KW + q];
              }
        }
}

template <class T>
void conv2d_reference_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw, T* db) {
  for (int64_t o = 0; o < g.O; ++o) {
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t p = 0; p < g.KH; ++p)
        for (int64_t q = 0; q < g.KW; ++q) {
          double s = 0;
          for (int64_t n = 0; n < g.N; ++n)
            for (int64_t i = 0; i < g.OH; ++i)
              for (int64_t j = 0; j < g.OW; ++j) {
                int64_t h = i * g.SH - g.PH + p, ww = j * g.SW - g.PW + q;
                if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                s += double(dy[((n * g.O + o) * g.OH + i) * g.OW + j]) * x[((n * g.C + c) * g.H + h) * g.W + ww];
              }
          dw[((o * g.C + c) * g.KH + p) * g.KW + q] = static_cast<T>(s);
        }
    if (db) {
      double s = 0;
      for (int64_t n = 0; n < g.N; ++n)
        for (int64_t i = 0; i < g.OH * g.OW; ++i) s += dy[(n * g.O + o) * g.OH * g.OW + i];
      db[o] = static_cast<T>(s);
    }
  }
}

#define MINIDL_INSTANTIATE(T)                                                                   \
  template void conv2d_reference_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*); \
  template void conv2d_reference_backward_input<T>(const ConvGeom&, const T*, const T*, T*);    \
  template void conv2d_reference_backward_weight<T>(const ConvGeom&, const T*, const T*, T*, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
