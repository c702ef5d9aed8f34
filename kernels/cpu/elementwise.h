// Elementwise kernels: unary maps over contiguous data and binary maps with NumPy
// broadcasting over arbitrary strides. Output is always contiguous.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/strided.h"

namespace minidl::cpu {

// Below this many elements an OpenMP region costs more than it saves.
constexpr int64_t kParallelGrain = 1 << 15;

template <class T, class F>
void unary_map(const T* x, T* out, int64_t n, F f) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i]);
}

// out[i] = f(a[ia], b[ib]) where ia/ib follow the broadcast strides sa/sb over `shape`.
template <class T, class F>
void binary_broadcast(const T* a, std::vector<int64_t> sa, const T* b, std::vector<int64_t> sb, T* out,
                      std::vector<int64_t> shape, F f) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<int64_t> so(shape.size());
  for (int64_t i = int64_t(shape.size()) - 1, acc = 1; i >= 0; --i) so[i] = acc, acc *= shape[i];
  coalesce_dims(shape, {&sa, &sb, &so});
  // Fast path: both operands laid out exactly like the (contiguous) output.
  if (shape.size() == 1 && sa[0] == 1 && sb[0] == 1) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
    return;
  }
  // General path: rows of the (coalesced) last dimension, each row's start from its index.
  const int64_t last = shape.back(), rows = n / last, la = sa.back(), lb = sb.back();
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* pa = a + row_offset(r, shape, sa);
    const T* pb = b + row_offset(r, shape, sb);
    T* po = out + r * last;
    for (int64_t j = 0; j < last; ++j) po[j] = f(pa[j * la], pb[j * lb]);
  }
}

// dst (any strides) = src (any strides), same shape.
template <class T>
void strided_copy(const T* src, std::vector<int64_t> ss, T* dst, std::vector<int64_t> ds, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  coalesce_dims(shape, {&ss, &ds});
  const int64_t last = shape.back(), rows = n / last, ls = ss.back(), ld = ds.back();
  if (rows == 1 && ls == 1 && ld == 1) {  // both contiguous
    std::copy(src, src + n, dst);
    return;
  }
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* ps = src + row_offset(r, shape, ss);
    T* pd = dst + row_offset(r, shape, ds);
    for (int64_t j = 0; j < last; ++j) pd[j * ld] = ps[j * ls];
  }
}

// out = sum of x over the dims where reduce[d] is true; out has x's shape with those dims
// set to 1. x contiguous. Accumulates in double in a fixed order: deterministic.
template <class T>
void sum_reduce(const T* x, const std::vector<int64_t>& shape, const std::vector<bool>& reduce, T* out) {
  std::vector<int64_t> out_shape = shape;
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduce[d]) out_shape[d] = 1;
  std::vector<int64_t> os(shape.size());
  int64_t acc = 1, out_n = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    os[i] = reduce[i] ? 0 : acc;
    acc *= out_shape[i];
  }
  out_n = acc;
  std::vector<double> sums(out_n, 0.0);
  for_each_offset(shape, os, [&](int64_t lin, int64_t off) { sums[off] += x[lin]; });
  for (int64_t i = 0; i < out_n; ++i) out[i] = static_cast<T>(sums[i]);
}

}  // namespace minidl::cpu
