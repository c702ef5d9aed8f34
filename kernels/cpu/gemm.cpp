#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// The config gemm<float> and conv's GEMMs run with: every path allowed. MINIDL_GEMM_SHARE_B=0
// in the environment (read once) packs op(B) per work item instead of once per team, for
// A/B timings of whole models (bench_train); the bits do not change.
static SgemmConfig default_sgemm_config() {
  SgemmConfig cfg;
  const char* v = std::getenv("MINIDL_GEMM_SHARE_B");
  cfg.share_b = !(v && std::strcmp(v, "0") == 0);
  return cfg;
}

// float goes to the fast kernel for the best ISA this CPU has (AVX-512, else AVX2/FMA;
// MINIDL_GEMM can force one, see gemm_isa.cpp); double, and float on CPUs with neither, to
// the reference.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    static const SgemmConfig defaults = default_sgemm_config();
    switch (sgemm_selected()) {
      case SgemmIsa::avx512:
        return sgemm_avx512_config(defaults, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      case SgemmIsa::avx2:
        return sgemm_avx2_config(defaults, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      case SgemmIsa::reference: break;
    }
  }
  gemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool sgemm_image(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const SgemmImage& b, float* C,
                 int64_t ldc) {
  static const SgemmConfig defaults = default_sgemm_config();
  switch (sgemm_selected()) {
    case SgemmIsa::avx512: sgemm_avx512_image(defaults, M, N, K, 1.f, A, lda, b, 0.f, C, ldc); return true;
    case SgemmIsa::avx2: sgemm_avx2_image(defaults, M, N, K, 1.f, A, lda, b, 0.f, C, ldc); return true;
    case SgemmIsa::reference: break;
  }
  return false;
}

int64_t sgemm_packed_a_floats(int64_t M, int64_t K) {
  switch (sgemm_selected()) {
    case SgemmIsa::avx512: return sgemm_avx512_packed_a_floats(M, K);
    case SgemmIsa::avx2: return sgemm_avx2_packed_a_floats(M, K);
    case SgemmIsa::reference: break;
  }
  return 0;
}

void sgemm_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, int64_t part, int64_t parts,
                  float* dst) {
  switch (sgemm_selected()) {
    case SgemmIsa::avx512: return sgemm_avx512_pack_a(trans_a, M, K, A, lda, part, parts, dst);
    case SgemmIsa::avx2: return sgemm_avx2_pack_a(trans_a, M, K, A, lda, part, parts, dst);
    case SgemmIsa::reference: break;
  }
  std::fprintf(stderr, "minidl: sgemm_pack_a called with the reference GEMM selected\n");
  std::abort();  // may run inside an OpenMP region; callers check sgemm_packed_a_floats first
}

void sgemm_prepacked(int64_t M, int64_t N, int64_t K, const float* apack, const float* B, int64_t ldb,
                     const SgemmImage* img, float* C, int64_t ldc) {
  static const SgemmConfig defaults = default_sgemm_config();
  switch (sgemm_selected()) {
    case SgemmIsa::avx512: return sgemm_avx512_prepacked(defaults, M, N, K, apack, B, ldb, img, C, ldc);
    case SgemmIsa::avx2: return sgemm_avx2_prepacked(defaults, M, N, K, apack, B, ldb, img, C, ldc);
    case SgemmIsa::reference: break;
  }
  std::fprintf(stderr, "minidl: sgemm_prepacked called with the reference GEMM selected\n");
  std::abort();  // may run inside an OpenMP region; callers check sgemm_packed_a_floats first
}

#define MINIDL_INSTANTIATE(T)                                                                                    \
  template void gemm_reference<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, \
                                  T, T*, int64_t);                                                              \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*, int64_t);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
