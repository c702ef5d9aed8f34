// The fast SGEMM behind cpu::gemm<float> (issue 5): packed panels, cache blocking, an
// AVX2/FMA register-blocked micro-kernel and OpenMP across blocks. Same contract as gemm()
// in gemm.h: row-major C = alpha * op(A) * op(B) + beta * C, any M, N, K, any leading
// dimensions, beta == 0 never reads C. The design notes are at the top of gemm_avx2.cpp.
//
// Determinism: which kernel runs, and the order in which each element of C is summed,
// depend only on (M, N, K, transposes); threads split C into disjoint blocks. So a result
// is bit-identical for any thread count, and whether or not it is called from inside an
// outer parallel region (it then runs on the calling thread alone).
#pragma once
#include <cstdint>

namespace minidl::cpu {

// True when this CPU has AVX2 and FMA (checked once, at run time). sgemm_avx2 may only be
// called when this is true; gemm<float> checks it and falls back to gemm_reference.
bool cpu_has_avx2_fma();

void sgemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Switches for the benchmark's ablation (what each step buys); the ops always use the
// defaults through sgemm_avx2. Each switch only narrows which paths may be taken, so every
// setting computes the same product (to rounding).
struct SgemmConfig {
  bool allow_dot = true;    // skinny products (one side <= 8) through the dot-product kernel
  bool allow_swap = true;   // compute C^T = op(B)^T op(A)^T when that puts the small side on the rows
  bool in_place = true;     // read op(A) or op(B) in place where packing it would not pay
  int max_threads = 0;      // 0: omp_get_max_threads(); always 1 inside a parallel region
};
void sgemm_avx2_config(const SgemmConfig& cfg, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                       int64_t ldc);

}  // namespace minidl::cpu
