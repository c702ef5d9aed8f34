// im2col / col2im without a bounds test per element, the chunk gather / scatter, and the
// workspaces. The per-element-test versions (im2col_reference, col2im_reference) are at
// the bottom, as the tests' oracle.
//
// For a kernel offset p, output row i reads input row h = i*SH - PH + p, which is inside
// [0, H) exactly for i in a range [lo, hi) computed once (valid_range); likewise the columns
// j for an offset q. So each output row of a (c, p, q) row of col is: zeros, a run of input
// values (a contiguous copy when SW == 1, a strided gather otherwise), zeros; and the rows
// outside [lo, hi) are all zeros.
#include "kernels/cpu/conv2d_lowering.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace minidl::cpu {

namespace {

struct Range {
  int64_t lo, hi;
};

// The outputs k in [0, out) whose input index k*stride - pad + offset lies in [0, size).
Range valid_range(int64_t offset, int64_t pad, int64_t stride, int64_t size, int64_t out) {
  // k*stride >= pad - offset  and  k*stride <= size - 1 + pad - offset
  const int64_t first = pad - offset;
  const int64_t lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  const int64_t last = size - 1 + pad - offset;
  const int64_t hi = last < 0 ? 0 : std::min(out, last / stride + 1);
  return {std::min(lo, hi), hi};
}

// valid_range for every kernel row p (entries 0..KH-1) and column q (entries KH..KH+KW-1),
// computed once per call rather than once per channel (each costs two divisions).
std::vector<Range> patch_ranges(const ConvGeom& g) {
  std::vector<Range> r(g.KH + g.KW);
  for (int64_t p = 0; p < g.KH; ++p) r[p] = valid_range(p, g.PH, g.SH, g.H, g.OH);
  for (int64_t q = 0; q < g.KW; ++q) r[g.KH + q] = valid_range(q, g.PW, g.SW, g.W, g.OW);
  return r;
}

}  // namespace

// Stride 1 and OW == W (a "same" conv such as ResNet's 3x3 pad 1): consecutive output rows
// of a patch row read consecutive input rows, so element k = i*OW + j of a (c, p, q) row of
// col is x_c[base + k], base = (p - PH)*W + (q - PW), for the whole run of valid rows,
// [lo*OW + rj.lo, (hi-1)*OW + rj.hi): moved in one pass, after which only the padding
// columns inside the run (outside [rj.lo, rj.hi) in each row, 0-2 per row for 3x3) need
// fixing. Rows of 4-16 values (ResNet's late stages at 64x64) otherwise pay a loop set-up
// each for a handful of values.
inline bool same_width_rows(const ConvGeom& g) { return g.SH == 1 && g.SW == 1 && g.OW == g.W; }

template <class T>
void im2col_channels(const ConvGeom& g, const T* x, int64_t c0, int64_t c1, T* col, int64_t ld) {
  const int64_t OH = g.OH, OW = g.OW, SW = g.SW;
  const std::vector<Range> range = patch_ranges(g);
  const bool runs = same_width_rows(g);
  for (int64_t c = c0; c < c1; ++c) {
    const T* xc = x + c * g.H * g.W;
    for (int64_t p = 0; p < g.KH; ++p) {
      const Range ri = range[p];
      for (int64_t q = 0; q < g.KW; ++q) {
        const Range rj = range[g.KH + q];
        T* row = col + ((c * g.KH + p) * g.KW + q) * ld;
        if (runs && ri.lo < ri.hi && rj.lo < rj.hi) {
          const int64_t base = (p - g.PH) * g.W + (q - g.PW), first = ri.lo * OW + rj.lo,
                        last = (ri.hi - 1) * OW + rj.hi;
          std::fill(row, row + first, T(0));
          std::copy(xc + (base + first), xc + (base + last), row + first);
          std::fill(row + last, row + OH * OW, T(0));
          for (int64_t i = ri.lo; i < ri.hi; ++i) {  // the padding columns the run copied over
            std::fill(row + i * OW, row + i * OW + rj.lo, T(0));
            std::fill(row + i * OW + rj.hi, row + (i + 1) * OW, T(0));
          }
          continue;
        }
        std::fill(row, row + ri.lo * OW, T(0));
        // Input column of output column j is j*SW + shift.
        const int64_t shift = q - g.PW;
        for (int64_t i = ri.lo; i < ri.hi; ++i) {
          T* __restrict out = row + i * OW;
          const T* __restrict src = xc + (i * g.SH - g.PH + p) * g.W;
          for (int64_t j = 0; j < rj.lo; ++j) out[j] = T(0);
          if (SW == 1) {
            for (int64_t j = rj.lo; j < rj.hi; ++j) out[j] = src[j + shift];
          } else {
            for (int64_t j = rj.lo; j < rj.hi; ++j) out[j] = src[j * SW + shift];
          }
          for (int64_t j = rj.hi; j < OW; ++j) out[j] = T(0);
        }
        std::fill(row + ri.hi * OW, row + OH * OW, T(0));
      }
    }
  }
}

template <class T>
void col2im_channels(const ConvGeom& g, T* col, int64_t c0, int64_t c1, T* x, int64_t ld) {
  const int64_t OW = g.OW, SW = g.SW;
  const std::vector<Range> range = patch_ranges(g);
  const bool runs = same_width_rows(g);
  for (int64_t c = c0; c < c1; ++c) {
    T* xc = x + c * g.H * g.W;
    for (int64_t p = 0; p < g.KH; ++p) {
      const Range ri = range[p];
      for (int64_t q = 0; q < g.KW; ++q) {
        const Range rj = range[g.KH + q];
        T* row = col + ((c * g.KH + p) * g.KW + q) * ld;
        const int64_t shift = q - g.PW;
        if (runs && ri.lo < ri.hi && rj.lo < rj.hi) {
          // im2col's run backwards: the padding entries inside it belong to no element of x,
          // so they are zeroed first (this consumes col), then the run is added in one pass.
          for (int64_t i = ri.lo; i < ri.hi; ++i) {
            std::fill(row + i * OW, row + i * OW + rj.lo, T(0));
            std::fill(row + i * OW + rj.hi, row + (i + 1) * OW, T(0));
          }
          const int64_t base = (p - g.PH) * g.W + shift, first = ri.lo * OW + rj.lo, last = (ri.hi - 1) * OW + rj.hi;
          T* __restrict dst = xc + (base + first);
          const T* __restrict in = row + first;
          for (int64_t k = 0; k < last - first; ++k) dst[k] += in[k];
          continue;
        }
        for (int64_t i = ri.lo; i < ri.hi; ++i) {
          const T* __restrict in = row + i * OW;
          T* __restrict dst = xc + (i * g.SH - g.PH + p) * g.W;
          if (SW == 1) {
            for (int64_t j = rj.lo; j < rj.hi; ++j) dst[j + shift] += in[j];
          } else {
            for (int64_t j = rj.lo; j < rj.hi; ++j) dst[j * SW + shift] += in[j];
          }
        }
      }
    }
  }
}

template <class T>
void gather_chunk(const T* src, int64_t nb, int64_t R, int64_t P, T* dst) {
  const int64_t ld = nb * P;
#pragma omp parallel for schedule(static) if (R * ld > kParallelCopyElems && !omp_in_parallel())
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < nb; ++s) std::memcpy(dst + r * ld + s * P, src + (s * R + r) * P, P * sizeof(T));
}

template <class T>
void scatter_chunk(const T* src, int64_t nb, int64_t R, int64_t P, const T* bias, T* dst) {
  const int64_t ld = nb * P;
#pragma omp parallel for schedule(static) if (R * ld > kParallelCopyElems && !omp_in_parallel())
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < nb; ++s) {
      const T* __restrict in = src + r * ld + s * P;
      T* __restrict out = dst + (s * R + r) * P;
      if (bias) {
        const T b = bias[r];
        for (int64_t i = 0; i < P; ++i) out[i] = in[i] + b;
      } else {
        std::memcpy(out, in, P * sizeof(T));
      }
    }
}

template <class T>
T* conv_workspace(int slot, int64_t n) {
  // Three slots: a GEMM's column operand, its other operand or result, and the forward's
  // packed weights (conv2d.cpp).
  thread_local std::vector<T> buffers[3];
  std::vector<T>& b = buffers[slot];
  if (int64_t(b.size()) < n) b.resize(n);
  return b.data();
}

// im2col / col2im of one whole sample (the public functions).
template <class T>
void im2col(const ConvGeom& g, const T* x, T* col) {
  im2col_channels(g, x, 0, g.C, col, g.col_cols());
}

template <class T>
void col2im(const ConvGeom& g, T* col, T* x) {
  col2im_channels(g, col, 0, g.C, x, g.col_cols());
}

// ---- the definitions, a bounds test per element ----

// Calls f(col index, x index) for every element of one sample's im2col, the x index -1
// where the patch element lies in the padding.
template <class F>
void for_each_patch_element(const ConvGeom& g, F&& f) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t p = 0; p < g.KH; ++p)
      for (int64_t q = 0; q < g.KW; ++q)
        for (int64_t i = 0; i < g.OH; ++i)
          for (int64_t j = 0; j < g.OW; ++j) {
            const int64_t h = i * g.SH - g.PH + p, w = j * g.SW - g.PW + q;
            const bool inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
            f(((c * g.KH + p) * g.KW + q) * g.col_cols() + i * g.OW + j, inside ? (c * g.H + h) * g.W + w : -1);
          }
}

template <class T>
void im2col_reference(const ConvGeom& g, const T* x, T* col) {
  for_each_patch_element(g, [&](int64_t ci, int64_t xi) { col[ci] = xi >= 0 ? x[xi] : T(0); });
}

template <class T>
void col2im_reference(const ConvGeom& g, const T* col, T* x) {
  for_each_patch_element(g, [&](int64_t ci, int64_t xi) {
    if (xi >= 0) x[xi] += col[ci];
  });
}

#define MINIDL_INSTANTIATE(T)                                                                  \
  template void im2col_channels<T>(const ConvGeom&, const T*, int64_t, int64_t, T*, int64_t); \
  template void col2im_channels<T>(const ConvGeom&, T*, int64_t, int64_t, T*, int64_t);       \
  template void gather_chunk<T>(const T*, int64_t, int64_t, int64_t, T*);                     \
  template void scatter_chunk<T>(const T*, int64_t, int64_t, int64_t, const T*, T*);          \
  template T* conv_workspace<T>(int, int64_t);                                                 \
  template void im2col<T>(const ConvGeom&, const T*, T*);                                      \
  template void col2im<T>(const ConvGeom&, T*, T*);                                            \
  template void im2col_reference<T>(const ConvGeom&, const T*, T*);                            \
  template void col2im_reference<T>(const ConvGeom&, const T*, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
