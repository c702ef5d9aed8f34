#include "kernels/cpu/pool.h"

#include <algorithm>
#include <limits>

#include "kernels/cpu/elementwise.h"  // kParallelGrain
#include "tensor/error.h"

namespace minidl::cpu {

PoolGeom make_pool_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                        int64_t PH, int64_t PW) {
  MINIDL_CHECK(KH >= 1 && KW >= 1, "max_pool2d: kernel must be >= 1, got (", KH, ", ", KW, ")");
  MINIDL_CHECK(SH >= 1 && SW >= 1, "max_pool2d: stride must be >= 1, got (", SH, ", ", SW, ")");
  MINIDL_CHECK(PH >= 0 && PW >= 0 && 2 * PH <= KH && 2 * PW <= KW, "max_pool2d: padding (", PH, ", ", PW,
               ") must be between 0 and half the kernel (", KH, ", ", KW, ")");
  MINIDL_CHECK(H + 2 * PH >= KH && W + 2 * PW >= KW, "max_pool2d: kernel ", KH, "x", KW,
               " is larger than the padded input ", H + 2 * PH, "x", W + 2 * PW);
  return {N, C, H, W, KH, KW, SH, SW, PH, PW, (H + 2 * PH - KH) / SH + 1, (W + 2 * PW - KW) / SW + 1};
}

template <class T>
void maxpool2d_forward(const PoolGeom& g, const T* x, T* y, int32_t* argmax) {
#pragma omp parallel for schedule(static) if (g.N * g.C * g.H * g.W > kParallelGrain)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const T* plane = x + nc * g.H * g.W;
    for (int64_t i = 0; i < g.OH; ++i)
      for (int64_t j = 0; j < g.OW; ++j) {
        const int64_t h0 = i * g.SH - g.PH, w0 = j * g.SW - g.PW;
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_at = -1;
        for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h0 + g.KH, g.H); ++h)
          for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + g.KW, g.W); ++w) {
            const T v = plane[h * g.W + w];
            // Strict '>' keeps the first of equal values; NaN propagates like PyTorch.
            if (best_at < 0 || v > best || v != v) {
              best = v;
              best_at = h * g.W + w;
              if (v != v) goto done;
            }
          }
      done:
        const int64_t o = (nc * g.OH + i) * g.OW + j;
        y[o] = best;
        argmax[o] = static_cast<int32_t>(best_at);
      }
  }
}

template <class T>
void maxpool2d_backward(const PoolGeom& g, const T* dy, const int32_t* argmax, T* dx) {
#pragma omp parallel for schedule(static) if (g.N * g.C * g.H * g.W > kParallelGrain)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    T* plane = dx + nc * g.H * g.W;
    std::fill(plane, plane + g.H * g.W, T(0));
    for (int64_t o = nc * g.OH * g.OW; o < (nc + 1) * g.OH * g.OW; ++o) plane[argmax[o]] += dy[o];
  }
}

template <class T>
void global_avgpool_forward(const T* x, int64_t NC, int64_t HW, T* y) {
#pragma omp parallel for schedule(static) if (NC * HW > kParallelGrain)
  for (int64_t i = 0; i < NC; ++i) {
    double s = 0;
    for (int64_t k = 0; k < HW; ++k) s += x[i * HW + k];
    y[i] = static_cast<T>(s / HW);
  }
}

template <class T>
void global_avgpool_backward(const T* dy, int64_t NC, int64_t HW, T* dx) {
#pragma omp parallel for schedule(static) if (NC * HW > kParallelGrain)
  for (int64_t i = 0; i < NC; ++i) {
    const T v = dy[i] / static_cast<T>(HW);
    for (int64_t k = 0; k < HW; ++k) dx[i * HW + k] = v;
  }
}

#define MINIDL_INSTANTIATE(T)                                                                \
  template void maxpool2d_forward<T>(const PoolGeom&, const T*, T*, int32_t*);               \
  template void maxpool2d_backward<T>(const PoolGeom&, const T*, const int32_t*, T*);        \
  template void global_avgpool_forward<T>(const T*, int64_t, int64_t, T*);                   \
  template void global_avgpool_backward<T>(const T*, int64_t, int64_t, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
