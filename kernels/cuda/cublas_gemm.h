// Row-major SGEMM on cuBLAS: C = alpha * op(A) op(B) + beta * C, op = transpose where asked,
// float32 device pointers, on cuda::stream(). Used by matmul and linear, and the peer our own
// tiled GEMM (gemm_tiled.h, same signature) is benchmarked and tested against.
//   op(A): M x K (A stored M x K with leading dimension lda, or K x M when ta)
//   op(B): K x N (B stored K x N with ldb, or N x K when tb);  C: M x N with ldc
// beta == 0 never reads C (it may hold garbage). Sizes must fit cuBLAS's int arguments.
#pragma once
#include <cstdint>

namespace minidl::cuda {

void cublas_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace minidl::cuda
