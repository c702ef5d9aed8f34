// Elementwise kernels: unary maps over contiguous data and binary maps with NumPy
// broadcasting over arbitrary strides. Output is always contiguous.
#pragma once
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
void binary_broadcast(const T* a, const std::vector<int64_t>& sa, const T* b, const std::vector<int64_t>& sb,
                      T* out, const std::vector<int64_t>& shape, F f) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (shape.empty()) {
    out[0] = f(a[0], b[0]);
    return;
  }
  // Fast path: both operands laid out exactly like the output.
  std::vector<int64_t> cs(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) cs[i] = acc, acc *= shape[i];
  if (sa == cs && sb == cs) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
    return;
  }
  // General path: rows of the last dimension, each row's start found from its index.
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
void strided_copy(const T* src, const std::vector<int64_t>& ss, T* dst, const std::vector<int64_t>& ds,
                  const std::vector<int64_t>& shape) {
  if (shape.empty()) {
    dst[0] = src[0];
    return;
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const int64_t last = shape.back(), rows = n / last, ls = ss.back(), ld = ds.back();
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
