// Our own SGEMM, the teaching peer of cuBLAS: shared-memory tiles, row-major, any sizes and
// every transpose combination. Same contract as cublas_sgemm (cublas_gemm.h):
//   C = alpha * op(A) op(B) + beta * C,  op(A): M x K,  op(B): K x N,  C: M x N
// float32 device pointers, queued on cuda::stream(); beta == 0 never reads C.
// gemm_tiled_batched runs `batch` independent products, the i-th on A + i*stride_a,
// B + i*stride_b, C + i*stride_c (a stride of 0 shares that operand, e.g. one weight for
// every sample). The products run in parallel, so the C blocks must not overlap.
#pragma once
#include <cstdint>

namespace minidl::cuda {

void gemm_tiled(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void gemm_tiled_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                        int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                        int64_t ldc, int64_t stride_c, int64_t batch);

}  // namespace minidl::cuda
