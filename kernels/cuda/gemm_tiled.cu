// The tiled SGEMM behind gemm_tiled.h.
//
// Each block computes a 64 x 64 tile of C. It walks K in steps of 16: the block's 256
// threads copy a 64 x 16 slice of op(A) and a 16 x 64 slice of op(B) into shared memory
// (zeros outside the matrices, so edge tiles need no other test), synchronise, and each
// thread accumulates a 4 x 4 patch of the tile from those slices: 16 loads from global
// memory per 64 x 64 x 16 = 65536 multiply-adds, instead of two per multiply-add.
//
// Thread (ty, tx), ty, tx in [0, 16), owns rows ty + 16 i and columns tx + 16 j (i, j < 4):
// strided rather than adjacent, so the 32 threads of a warp read 16 consecutive floats of a
// B slice row (no bank conflicts) and write 16 consecutive floats of a C row.
//
// The transposes are template parameters: op(A)(m, k) is A[m * lda + k], or A[k * lda + m]
// when transposed. The copy into shared memory lets consecutive threads walk whichever index
// is contiguous in memory, so global reads stay coalesced in all four combinations.
#include "kernels/cuda/gemm_tiled.h"

#include "kernels/cuda/cuda_check.h"

namespace minidl::cuda {

namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kThreads = 256;
constexpr int kPerThread = 4;  // rows and columns of C per thread (16 x 4 = 64)
static_assert(kTileM * kTileK % kThreads == 0 && kTileN * kTileK % kThreads == 0, "slices split evenly");

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads)
sgemm_tiled_kernel(int64_t M, int64_t N, int64_t K, float alpha, const float* __restrict__ A, int64_t lda,
                   int64_t stride_a, const float* __restrict__ B, int64_t ldb, int64_t stride_b, float beta,
                   float* __restrict__ C, int64_t ldc, int64_t stride_c, int64_t batch) {
  // +1 column: the slice copies write along k for one of the transposes; the pad spreads
  // those writes over the banks.
  __shared__ float As[kTileK][kTileM + 1];
  __shared__ float Bs[kTileK][kTileN + 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t tiles_m = (M + kTileM - 1) / kTileM, tiles_n = (N + kTileN - 1) / kTileN;

  // Grid-stride over batch entries and tiles: a grid capped at the hardware limits still
  // covers everything. The loop bounds are the same for the whole block, so every thread
  // reaches every __syncthreads.
  for (int64_t bz = blockIdx.z; bz < batch; bz += gridDim.z)
    for (int64_t tm = blockIdx.y; tm < tiles_m; tm += gridDim.y)
      for (int64_t tn = blockIdx.x; tn < tiles_n; tn += gridDim.x) {
        const float* a = A + bz * stride_a;
        const float* b = B + bz * stride_b;
        float* c = C + bz * stride_c;
        const int64_t m0 = tm * kTileM, n0 = tn * kTileN;
        float acc[kPerThread][kPerThread] = {};

        for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
#pragma unroll
          for (int r = 0; r < kTileM * kTileK / kThreads; ++r) {
            const int e = tid + r * kThreads;
            const int mm = TA ? e % kTileM : e / kTileK;  // TA: m contiguous; else k
            const int kk = TA ? e / kTileM : e % kTileK;
            const int64_t gm = m0 + mm, gk = k0 + kk;
            float v = 0.f;
            if (gm < M && gk < K) v = TA ? a[gk * lda + gm] : a[gm * lda + gk];
            As[kk][mm] = v;
          }
#pragma unroll
          for (int r = 0; r < kTileN * kTileK / kThreads; ++r) {
            const int e = tid + r * kThreads;
            const int nn = TB ? e / kTileK : e % kTileN;  // TB: k contiguous; else n
            const int kk = TB ? e % kTileK : e / kTileN;
            const int64_t gn = n0 + nn, gk = k0 + kk;
            float v = 0.f;
            if (gn < N && gk < K) v = TB ? b[gn * ldb + gk] : b[gk * ldb + gn];
            Bs[kk][nn] = v;
          }
          __syncthreads();
#pragma unroll
          for (int kk = 0; kk < kTileK; ++kk) {
            float av[kPerThread], bv[kPerThread];
#pragma unroll
            for (int i = 0; i < kPerThread; ++i) av[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < kPerThread; ++j) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < kPerThread; ++i)
#pragma unroll
              for (int j = 0; j < kPerThread; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
          }
          __syncthreads();  // the slices are overwritten next step
        }

#pragma unroll
        for (int i = 0; i < kPerThread; ++i) {
          const int64_t m = m0 + ty + 16 * i;
          if (m >= M) continue;
#pragma unroll
          for (int j = 0; j < kPerThread; ++j) {
            const int64_t n = n0 + tx + 16 * j;
            if (n >= N) continue;
            float* out = c + m * ldc + n;
            *out = beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *out;
          }
        }
      }
}

}  // namespace

void gemm_tiled_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                        int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                        int64_t ldc, int64_t stride_c, int64_t batch) {
  MINIDL_CHECK(M >= 0 && N >= 0 && K >= 0 && batch >= 0, "gemm_tiled: negative size M=", M, " N=", N, " K=", K,
               " batch=", batch);
  MINIDL_CHECK(lda >= (ta ? M : K) && ldb >= (tb ? K : N) && ldc >= N, "gemm_tiled: leading dimensions lda=", lda,
               " ldb=", ldb, " ldc=", ldc, " too small for M=", M, " N=", N, " K=", K, (ta ? " (A transposed)" : ""),
               (tb ? " (B transposed)" : ""));
  if (M == 0 || N == 0 || batch == 0) return;
  const int64_t tiles_m = (M + kTileM - 1) / kTileM, tiles_n = (N + kTileN - 1) / kTileN;
  // Hardware limits: x up to 2^31 - 1, y and z up to 65535; the kernel loops over the rest.
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(tiles_n, 1 << 30)),
                  static_cast<unsigned>(std::min<int64_t>(tiles_m, 65535)),
                  static_cast<unsigned>(std::min<int64_t>(batch, 65535)));
  cudaStream_t s = stream();
  if (!ta && !tb)
    sgemm_tiled_kernel<false, false><<<grid, kThreads, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                                                               beta, C, ldc, stride_c, batch);
  else if (!ta && tb)
    sgemm_tiled_kernel<false, true><<<grid, kThreads, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                                                              beta, C, ldc, stride_c, batch);
  else if (ta && !tb)
    sgemm_tiled_kernel<true, false><<<grid, kThreads, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                                                              beta, C, ldc, stride_c, batch);
  else
    sgemm_tiled_kernel<true, true><<<grid, kThreads, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                                                             beta, C, ldc, stride_c, batch);
  MINIDL_CUDA_CHECK_LAUNCH("sgemm_tiled_kernel");
}

void gemm_tiled(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_tiled_batched(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

}  // namespace minidl::cuda
