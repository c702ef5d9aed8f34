#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm_fast.h"

namespace minidl::cpu {

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  auto a_at = [&](int64_t i, int64_t p) { return double(trans_a ? A[p * lda + i] : A[i * lda + p]); };
  // Sums are accumulated in double. Accumulating K float products in float, rounding at
  // every step, was measured to cost ~1e-2 relative error in the first layers' gradients of
  // a ResNet50 backward (against PyTorch in float64); with double accumulators our float32
  // gradients land within ~4e-7 of the float64 result. The reference is the accurate one;
  // speed is the fast kernel's job.
  //
  // Rows of C are independent: one thread per block of rows. Inside a row the loop order
  // keeps the innermost access contiguous (i-p-j when B is not transposed, a dot product
  // along p when it is).
#pragma omp parallel if (M * N * K > (1 << 18) && !omp_in_parallel())
  {
    std::vector<double> acc(N);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < M; ++i) {
      T* c = C + i * ldc;
      std::fill(acc.begin(), acc.end(), 0.0);
      if (!trans_b) {
        for (int64_t p = 0; p < K; ++p) {
          const double a = a_at(i, p);
          const T* b = B + p * ldb;
          for (int64_t j = 0; j < N; ++j) acc[j] += a * b[j];
        }
      } else {
        for (int64_t j = 0; j < N; ++j) {
          const T* b = B + j * ldb;
          double s = 0;
          for (int64_t p = 0; p < K; ++p) s += a_at(i, p) * b[p];
          acc[j] = s;
        }
      }
      // beta == 0 overwrites C without reading it (C may hold garbage or NaN).
      for (int64_t j = 0; j < N; ++j)
        c[j] = static_cast<T>(double(alpha) * acc[j] + (beta == T(0) ? 0.0 : double(beta) * c[j]));
    }
  }
}

// Checked once. Defined here, not in gemm_avx2.cpp, because that file is compiled with AVX2
// enabled and this check must run on any x86-64.
bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// float goes to the packed AVX2/FMA kernel (gemm_avx2.cpp) when the CPU has it; double, and
// float on older CPUs, to the reference.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (cpu_has_avx2_fma()) return sgemm_avx2(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  gemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#define MINIDL_INSTANTIATE(T)                                                                                    \
  template void gemm_reference<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, \
                                  T, T*, int64_t);                                                              \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*, int64_t);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
