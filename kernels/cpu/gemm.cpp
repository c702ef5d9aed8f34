#include "kernels/cpu/gemm.h"

#include <omp.h>

namespace minidl::cpu {

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  auto a_at = [&](int64_t i, int64_t p) { return trans_a ? A[p * lda + i] : A[i * lda + p]; };
  // Rows of C are independent: one thread per block of rows. Inside a row the loop order
  // keeps the innermost access contiguous (i-p-j when B is not transposed, a dot product
  // along p when it is).
#pragma omp parallel for schedule(static) if (M * N * K > (1 << 18) && !omp_in_parallel())
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) c[j] = beta == T(0) ? T(0) : beta * c[j];
    if (!trans_b) {
      for (int64_t p = 0; p < K; ++p) {
        const T a = alpha * a_at(i, p);
        const T* b = B + p * ldb;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      }
    } else {
      for (int64_t j = 0; j < N; ++j) {
        const T* b = B + j * ldb;
        T s = 0;
        for (int64_t p = 0; p < K; ++p) s += a_at(i, p) * b[p];
        c[j] += alpha * s;
      }
    }
  }
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
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
