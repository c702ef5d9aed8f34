// GEMM, row-major: C = alpha * op(A) * op(B) + beta * C, with op(X) = X or X^T.
// op(A) is M x K, op(B) is K x N, C is M x N; lda/ldb/ldc are row strides in elements.
// gemm() is the entry point the ops call; gemm_reference() is the plain loop it is checked
// against. The fast kernels (issue 5, gemm_fast.h) plug in behind gemm<float> without
// touching callers.
#pragma once
#include <cstdint>

namespace minidl::cpu {

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// The kernel gemm<float> runs: "avx512", "avx2" or "reference" (gemm<double> always runs
// the reference). The fastest this CPU supports unless the environment variable
// MINIDL_GEMM=avx512|avx2|reference forces one; it is read once. Throws minidl::Error when
// MINIDL_GEMM holds anything else or asks for an ISA this CPU lacks (so does gemm<float>).
const char* gemm_isa();

}  // namespace minidl::cpu
