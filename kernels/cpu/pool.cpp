#include "kernels/cpu/pool.h"

#include <algorithm>
#include <limits>

#include "kernels/cpu/bn_lanes.h"
#include "kernels/cpu/elementwise.h"  // kParallelGrain
#include "tensor/error.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // bn_lanes.h's vectors stay inside inlined code

namespace minidl::cpu {

PoolGeom make_pool_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                        int64_t PH, int64_t PW) {
  MINIDL_CHECK(KH >= 1 && KW >= 1, "max_pool2d: kernel must be >= 1, got (", KH, ", ", KW, ")");
  MINIDL_CHECK(SH >= 1 && SW >= 1, "max_pool2d: stride must be >= 1, got (", SH, ", ", SW, ")");
  MINIDL_CHECK(PH >= 0 && PW >= 0 && 2 * PH <= KH && 2 * PW <= KW, "max_pool2d: padding (", PH, ", ", PW,
               ") must be between 0 and half the kernel (", KH, ", ", KW, ")");
  MINIDL_CHECK(H + 2 * PH >= KH && W + 2 * PW >= KW, "max_pool2d: kernel ", KH, "x", KW,
               " is larger than the padded input ", H + 2 * PH, "x", W + 2 * PW);
  // The saved argmax is an int32 index into one H x W plane.
  MINIDL_CHECK(H * W <= std::numeric_limits<int32_t>::max(), "max_pool2d: a ", H, "x", W,
               " plane has more elements than the int32 argmax can index");
  return {N, C, H, W, KH, KW, SH, SW, PH, PW, (H + 2 * PH - KH) / SH + 1, (W + 2 * PW - KW) / SW + 1};
}

namespace {

// The max of window (i, j) of one plane, by the reference rule: row-major order, strict '>'
// keeps the first of equal values, and the first NaN wins (PyTorch propagates NaN).
template <class T>
inline void window_max(const PoolGeom& g, const T* plane, int64_t i, int64_t j, T& best, int32_t& best_at) {
  const int64_t h0 = i * g.SH - g.PH, w0 = j * g.SW - g.PW;
  best = -std::numeric_limits<T>::infinity();
  int64_t at = -1;
  for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h0 + g.KH, g.H); ++h)
    for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + g.KW, g.W); ++w) {
      const T v = plane[h * g.W + w];
      if (at < 0 || v > best || v != v) {
        best = v;
        at = h * g.W + w;
        if (v != v) goto done;
      }
    }
done:
  best_at = static_cast<int32_t>(at);
}

// The same rule without branches, for one more value of a window already started: v wins
// when larger, or when it is NaN and the best so far is not.
template <class T>
inline void take(T v, int32_t at, T& best, int32_t& best_at) {
  const bool win = v > best || (v != v && best == best);
  best = win ? v : best;
  best_at = win ? at : best_at;
}

// Interior outputs j0 <= j < j1 of one 3x3/2 output row whose input rows r = x + h0*W ..
// +2W are all inside the plane, in two vectorisable passes with no serial compare chain.
// Pass 1, per column c: m[c] = the max of the three rows, and at[c] = the flat index of the
// first row holding it. Pass 2, per output: best = max of m over columns 2j-1 .. 2j+1, and the
// argmax is the smallest at[c] among those columns with m[c] == best. The smallest flat index
// is the first in row-major window order, and the first element equal to the maximum is the
// one the reference's strict '>' keeps; y is read back at it, so -0.0 against +0.0 is exact
// too. NaN breaks '==' and max, so pass 1 also notes whether any NaN is present; if so it
// returns false and the caller takes the reference rule for these outputs.
template <class T>
bool max3x3_interior(const T* plane, int64_t W, int64_t h0, int64_t j0, int64_t j1, T* y, int32_t* argmax) {
  constexpr int64_t kChunk = 64;  // outputs per pass, so m and at stay in L1
  T m[2 * kChunk + 1];
  int32_t at[2 * kChunk + 1];
  const T* r0 = plane + h0 * W;
  const T* r1 = r0 + W;
  const T* r2 = r1 + W;
  const int32_t f0 = static_cast<int32_t>(h0 * W), w32 = static_cast<int32_t>(W);
  for (int64_t ja = j0; ja < j1; ja += kChunk) {
    const int64_t n = std::min(kChunk, j1 - ja), c0 = 2 * ja - 1;
    int32_t nan = 0;
    for (int64_t k = 0; k < 2 * n + 1; ++k) {
      const T a = r0[c0 + k], b = r1[c0 + k], d = r2[c0 + k];
      nan |= (a != a || b != b || d != d) ? 1 : 0;
      const T ab = b > a ? b : a, mx = d > ab ? d : ab;
      const int32_t c = static_cast<int32_t>(c0 + k);
      at[k] = a == mx ? f0 + c : (b == mx ? f0 + w32 + c : f0 + 2 * w32 + c);
      m[k] = mx;
    }
    if (nan) return false;
    for (int64_t q = 0; q < n; ++q) {
      const T p0 = m[2 * q], p1 = m[2 * q + 1], p2 = m[2 * q + 2];
      const T p01 = p1 > p0 ? p1 : p0, best = p2 > p01 ? p2 : p01;
      constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
      const int32_t t0 = at[2 * q], t1 = at[2 * q + 1], t2 = at[2 * q + 2];
      const int32_t a0 = p0 == best ? t0 : kNone, a1 = p1 == best ? t1 : kNone, a2 = p2 == best ? t2 : kNone;
      const int32_t a01 = a1 < a0 ? a1 : a0;
      argmax[ja + q] = a2 < a01 ? a2 : a01;
    }
    for (int64_t q = 0; q < n; ++q) y[ja + q] = plane[argmax[ja + q]];
  }
  return true;
}

// 3x3, stride 2, pad 1 over one plane. A window is interior when rows 2i-1 .. 2i+1 and
// columns 2j-1 .. 2j+1 all lie inside the plane; those take max3x3_interior (or, in a row
// with a NaN, the branch-free reference rule), the border ones the reference's.
template <class T>
void maxpool_3x3s2p1_plane(const PoolGeom& g, const T* plane, T* y, int32_t* argmax) {
  const int64_t W = g.W, j_last = (W - 2) / 2;  // interior columns: 1 <= j <= j_last
  for (int64_t i = 0; i < g.OH; ++i) {
    T* yr = y + i * g.OW;
    int32_t* ar = argmax + i * g.OW;
    const int64_t h0 = 2 * i - 1;
    // Column 0 always touches the left padding; columns from j_end on the right border.
    const int64_t j_end = h0 >= 0 && h0 + 3 <= g.H ? std::max<int64_t>(1, std::min(j_last + 1, g.OW)) : 1;
    window_max(g, plane, i, 0, yr[0], ar[0]);
    if (j_end > 1 && !max3x3_interior(plane, W, h0, 1, j_end, yr, ar))
      for (int64_t j = 1; j < j_end; ++j) {
        const int32_t base = static_cast<int32_t>(h0 * W + 2 * j - 1);
        T best = plane[base];
        int32_t at = base;
        take(plane[base + 1], base + 1, best, at);
        take(plane[base + 2], base + 2, best, at);
        for (int64_t r = 1; r < 3; ++r) {
          const int32_t o = static_cast<int32_t>(base + r * W);
          take(plane[o], o, best, at);
          take(plane[o + 1], o + 1, best, at);
          take(plane[o + 2], o + 2, best, at);
        }
        yr[j] = best;
        ar[j] = at;
      }
    for (int64_t j = j_end; j < g.OW; ++j) window_max(g, plane, i, j, yr[j], ar[j]);
  }
}

}  // namespace

template <class T>
void maxpool2d_forward_reference(const PoolGeom& g, const T* x, T* y, int32_t* argmax) {
#pragma omp parallel for schedule(static) if (g.N * g.C * g.H * g.W > kParallelGrain)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc)
    for (int64_t i = 0; i < g.OH; ++i)
      for (int64_t j = 0; j < g.OW; ++j) {
        const int64_t o = (nc * g.OH + i) * g.OW + j;
        window_max(g, x + nc * g.H * g.W, i, j, y[o], argmax[o]);
      }
}

template <class T>
void maxpool2d_forward(const PoolGeom& g, const T* x, T* y, int32_t* argmax) {
  const bool stem = g.KH == 3 && g.KW == 3 && g.SH == 2 && g.SW == 2 && g.PH == 1 && g.PW == 1;
  if (!stem) return maxpool2d_forward_reference(g, x, y, argmax);
#pragma omp parallel for schedule(static) if (g.N * g.C * g.H * g.W > kParallelGrain)
  for (int64_t nc = 0; nc < g.N * g.C; ++nc)
    maxpool_3x3s2p1_plane(g, x + nc * g.H * g.W, y + nc * g.OH * g.OW, argmax + nc * g.OH * g.OW);
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
void global_avgpool_forward_reference(const T* x, int64_t NC, int64_t HW, T* y) {
#pragma omp parallel for schedule(static) if (NC * HW > kParallelGrain)
  for (int64_t i = 0; i < NC; ++i) {
    double s = 0;
    for (int64_t k = 0; k < HW; ++k) s += x[i * HW + k];
    y[i] = static_cast<T>(s / HW);
  }
}

template <class T>
void global_avgpool_forward(const T* x, int64_t NC, int64_t HW, T* y) {
#pragma omp parallel for schedule(static) if (NC * HW > kParallelGrain)
  for (int64_t i = 0; i < NC; ++i) {
    const T* p = x + i * HW;
    y[i] = static_cast<T>(lane_sum<double>(HW, [p](auto ld) { return widen(ld, p); }) / double(HW));
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
  template void maxpool2d_forward_reference<T>(const PoolGeom&, const T*, T*, int32_t*);     \
  template void global_avgpool_forward_reference<T>(const T*, int64_t, int64_t, T*);         \
  template void maxpool2d_backward<T>(const PoolGeom&, const T*, const int32_t*, T*);        \
  template void global_avgpool_forward<T>(const T*, int64_t, int64_t, T*);                   \
  template void global_avgpool_backward<T>(const T*, int64_t, int64_t, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
