// Deterministic, vectorisable sums for the memory-bound kernels (batch norm, pooling).
//
// A float sum written as `for (i) s += p[i]` cannot be vectorised without reassociation
// flags, and GCC 12 turns a hand-written array of lane accumulators into in-order scalar
// adds when a loop has two of them. So the lanes are a GCC/Clang vector type: 16 floats
// or 8 doubles (one AVX-512 register, four SSE2 ones on the baseline x86-64 target the
// library is built for). Every kLaneChunk elements the lanes are added into a double, so a
// float lane never sums more than kLaneChunk / 16 = 64 terms (error ~64 ulp worst case,
// before the double takes over). The tail (n % lanes) is summed in double. The order of
// additions depends only on n: the same result on every ISA and for every thread count.
//
// A term is a generic lambda of a loader `ld`: ld(p) is p[i .. i+lanes) as a vector in the
// main loop and p[i] in the tail, so one expression serves both, e.g.
//   lane_sum<float>(n, [&](auto ld) { return ld(a) * ld(b); })   // dot product
#pragma once
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // vector types only live inside inlined code here

namespace minidl::cpu {

// (vector_size cannot apply to a dependent type, hence one specialisation per type.)
template <class T>
struct LaneType;
template <>
struct LaneType<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct LaneType<double> {
  typedef double type __attribute__((vector_size(64)));
};
template <class T>
using Lanes = typename LaneType<T>::type;
template <class T>
constexpr int kLanes = 64 / sizeof(T);
constexpr int64_t kLaneChunk = 1024;

template <class T>
inline Lanes<T> load_lanes(const T* p) {  // unaligned
  Lanes<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
inline void store_lanes(T* p, Lanes<T> v) {
  std::memcpy(p, &v, sizeof v);
}

template <class T>
struct VectorLoad {
  int64_t i;
  Lanes<T> operator()(const T* p) const { return load_lanes(p + i); }
};
template <class T>
struct ScalarLoad {
  int64_t i;
  T operator()(const T* p) const { return p[i]; }
};

// Float data summed in double lanes (a sum that must keep float's precision after the
// division, e.g. an average pool): ld(p) of a double-lane sum, applied to a float pointer.
typedef float Float8 __attribute__((vector_size(32)));
inline Lanes<double> widen(VectorLoad<double> ld, const float* p) {
  Float8 v;
  std::memcpy(&v, p + ld.i, sizeof v);
  return __builtin_convertvector(v, Lanes<double>);
}
inline double widen(ScalarLoad<double> ld, const float* p) { return p[ld.i]; }
inline Lanes<double> widen(VectorLoad<double> ld, const double* p) { return ld(p); }
inline double widen(ScalarLoad<double> ld, const double* p) { return ld(p); }

// Lane-wise sqrt, correctly rounded like std::sqrt (SSE2 sqrtps/sqrtpd are IEEE sqrt). A
// plain std::sqrt in a loop does not vectorise: it may set errno.
template <class T>
inline Lanes<T> lane_sqrt(Lanes<T> v) {
#if defined(__SSE2__)
  constexpr int kPieces = sizeof(v) / 16;
  for (int k = 0; k < kPieces; ++k) {
    if constexpr (sizeof(T) == 4) {
      __m128 x;
      std::memcpy(&x, reinterpret_cast<char*>(&v) + 16 * k, 16);
      x = _mm_sqrt_ps(x);
      std::memcpy(reinterpret_cast<char*>(&v) + 16 * k, &x, 16);
    } else {
      __m128d x;
      std::memcpy(&x, reinterpret_cast<char*>(&v) + 16 * k, 16);
      x = _mm_sqrt_pd(x);
      std::memcpy(reinterpret_cast<char*>(&v) + 16 * k, &x, 16);
    }
  }
#else
  for (int j = 0; j < kLanes<T>; ++j) v[j] = std::sqrt(v[j]);
#endif
  return v;
}

// x where m > 0, else 0, for scalars and lane vectors alike (relu's backward mask). On lane
// vectors as a bitwise and with the comparison's all-ones / all-zeros lanes: GCC lowers a
// vector ?: on the SSE2 baseline lane by lane (it made the masked BN backward 2-4x slower).
template <class V>
inline V where_positive(V m, V x) {
  if constexpr (std::is_arithmetic_v<V>) {
    return m > 0 ? x : V{};
  } else {
    const auto keep = m > 0;  // a signed integer vector of the same width: -1 or 0 per lane
    return reinterpret_cast<V>(reinterpret_cast<decltype(keep)>(x) & keep);
  }
}

template <class T>
inline double horizontal_sum(Lanes<T> v) {
  double s = 0;
  for (int j = 0; j < kLanes<T>; ++j) s += v[j];
  return s;
}

// sa = sum over i in [0, n) of fa(ld_i), sb likewise of fb (fb may be omitted: one sum).
template <class T, class FA, class FB>
inline void lane_sum2(int64_t n, FA fa, FB fb, double& sa, double& sb) {
  constexpr int L = kLanes<T>;
  sa = 0;
  sb = 0;
  int64_t i = 0;
  while (n - i >= L) {
    const int64_t end = i + std::min<int64_t>(kLaneChunk, (n - i) / L * L);
    Lanes<T> a = {}, b = {};
    for (; i < end; i += L) {
      a += fa(VectorLoad<T>{i});
      b += fb(VectorLoad<T>{i});
    }
    sa += horizontal_sum<T>(a);
    sb += horizontal_sum<T>(b);
  }
  for (; i < n; ++i) sa += fa(ScalarLoad<T>{i}), sb += fb(ScalarLoad<T>{i});
}

template <class T, class F>
inline double lane_sum(int64_t n, F term) {
  double s, unused;
  lane_sum2<T>(n, term, [](auto) { return T(0); }, s, unused);
  return s;
}

}  // namespace minidl::cpu

#pragma GCC diagnostic pop
