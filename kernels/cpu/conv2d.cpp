#include "kernels/cpu/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "tensor/error.h"

namespace minidl::cpu {

namespace {
// Below this many multiply-adds a parallel region costs more than it saves.
bool worth_parallel(const ConvGeom& g) { return g.N > 1 && g.N * g.O * g.col_rows() * g.col_cols() > (1 << 18); }
}  // namespace

ConvGeom make_conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t SH,
                        int64_t SW, int64_t PH, int64_t PW) {
  MINIDL_CHECK(SH >= 1 && SW >= 1, "conv2d: stride must be >= 1, got (", SH, ", ", SW, ")");
  MINIDL_CHECK(PH >= 0 && PW >= 0, "conv2d: padding must be >= 0, got (", PH, ", ", PW, ")");
  ConvGeom g{N, C, H, W, O, KH, KW, SH, SW, PH, PW, 0, 0};
  MINIDL_CHECK(H + 2 * PH >= KH && W + 2 * PW >= KW, "conv2d: kernel ", KH, "x", KW, " is larger than the padded input ",
               H + 2 * PH, "x", W + 2 * PW);
  g.OH = (H + 2 * PH - KH) / SH + 1;
  g.OW = (W + 2 * PW - KW) / SW + 1;
  return g;
}

template <class T>
void im2col(const ConvGeom& g, const T* x, T* col) {
  const int64_t cols = g.col_cols();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t p = 0; p < g.KH; ++p)
      for (int64_t q = 0; q < g.KW; ++q) {
        T* row = col + ((c * g.KH + p) * g.KW + q) * cols;
        for (int64_t i = 0; i < g.OH; ++i) {
          const int64_t h = i * g.SH - g.PH + p;
          T* out = row + i * g.OW;
          if (h < 0 || h >= g.H) {
            std::fill(out, out + g.OW, T(0));
            continue;
          }
          const T* src = x + (c * g.H + h) * g.W;
          for (int64_t j = 0; j < g.OW; ++j) {
            const int64_t w = j * g.SW - g.PW + q;
            out[j] = (w >= 0 && w < g.W) ? src[w] : T(0);
          }
        }
      }
}

template <class T>
void col2im(const ConvGeom& g, const T* col, T* x) {
  const int64_t cols = g.col_cols();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t p = 0; p < g.KH; ++p)
      for (int64_t q = 0; q < g.KW; ++q) {
        const T* row = col + ((c * g.KH + p) * g.KW + q) * cols;
        for (int64_t i = 0; i < g.OH; ++i) {
          const int64_t h = i * g.SH - g.PH + p;
          if (h < 0 || h >= g.H) continue;
          T* dst = x + (c * g.H + h) * g.W;
          const T* in = row + i * g.OW;
          for (int64_t j = 0; j < g.OW; ++j) {
            const int64_t w = j * g.SW - g.PW + q;
            if (w >= 0 && w < g.W) dst[w] += in[j];
          }
        }
      }
}

template <class T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t K = g.col_rows(), P = g.col_cols();
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0;
#pragma omp parallel if (worth_parallel(g))
  {
    // One sample's columns per thread: the workspace is bounded by threads, not batch.
    std::vector<T> col(pointwise ? 0 : K * P);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      const T* xn = x + n * g.C * g.H * g.W;
      T* yn = y + n * g.O * P;
      const T* cols = xn;  // a 1x1 stride-1 unpadded conv is already a GEMM on x
      if (!pointwise) {
        im2col(g, xn, col.data());
        cols = col.data();
      }
      gemm(false, false, g.O, P, K, T(1), w, K, cols, P, T(0), yn, P);
      if (bias)
        for (int64_t o = 0; o < g.O; ++o)
          for (int64_t i = 0; i < P; ++i) yn[o * P + i] += bias[o];
    }
  }
}

template <class T>
void conv2d_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t K = g.col_rows(), P = g.col_cols();
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0;
#pragma omp parallel if (worth_parallel(g))
  {
    std::vector<T> col(pointwise ? 0 : K * P);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      T* dxn = dx + n * g.C * g.H * g.W;
      const T* dyn = dy + n * g.O * P;
      if (pointwise) {
        gemm(true, false, K, P, g.O, T(1), w, K, dyn, P, T(0), dxn, P);
        continue;
      }
      gemm(true, false, K, P, g.O, T(1), w, K, dyn, P, T(0), col.data(), P);
      std::fill(dxn, dxn + g.C * g.H * g.W, T(0));
      col2im(g, col.data(), dxn);
    }
  }
}

template <class T>
void conv2d_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw, T* db) {
  const int64_t K = g.col_rows(), P = g.col_cols();
  const bool pointwise = g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0;
  const int max_threads = omp_in_parallel() || !worth_parallel(g) ? 1 : omp_get_max_threads();
  // Each thread sums its own contiguous block of samples into a private buffer; the buffers
  // are then added in thread order, so the result depends only on the thread count. The
  // blocks follow the number of threads the runtime actually started (it may grant fewer
  // than asked), so no sample is ever left out.
  std::vector<std::vector<T>> partial(max_threads);
  int granted = 1;
#pragma omp parallel num_threads(max_threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
    granted = nt;
    partial[t].assign(g.O * K, T(0));
    std::vector<T> col(pointwise ? 0 : K * P);
    const int64_t lo = g.N * t / nt, hi = g.N * (t + 1) / nt;
    for (int64_t n = lo; n < hi; ++n) {
      const T* xn = x + n * g.C * g.H * g.W;
      const T* cols = xn;
      if (!pointwise) {
        im2col(g, xn, col.data());
        cols = col.data();
      }
      gemm(false, true, g.O, K, P, T(1), dy + n * g.O * P, P, cols, P, T(1), partial[t].data(), K);
    }
  }
  for (int64_t i = 0; i < g.O * K; ++i) {
    T s = 0;
    for (int t = 0; t < granted; ++t) s += partial[t][i];
    dw[i] = s;
  }
  if (db) {
    for (int64_t o = 0; o < g.O; ++o) {
      double s = 0;
      for (int64_t n = 0; n < g.N; ++n) {
        const T* d = dy + (n * g.O + o) * P;
        for (int64_t i = 0; i < P; ++i) s += d[i];
      }
      db[o] = static_cast<T>(s);
    }
  }
}

// ---- references: the definition, written as directly as possible ----

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

#define MINIDL_INSTANTIATE(T)                                                                        \
  template void im2col<T>(const ConvGeom&, const T*, T*);                                            \
  template void col2im<T>(const ConvGeom&, const T*, T*);                                            \
  template void conv2d_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*);                \
  template void conv2d_backward_input<T>(const ConvGeom&, const T*, const T*, T*);                   \
  template void conv2d_backward_weight<T>(const ConvGeom&, const T*, const T*, T*, T*);              \
  template void conv2d_reference_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*);      \
  template void conv2d_reference_backward_input<T>(const ConvGeom&, const T*, const T*, T*);         \
  template void conv2d_reference_backward_weight<T>(const ConvGeom&, const T*, const T*, T*, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
