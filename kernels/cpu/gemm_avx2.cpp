// Fast single-precision GEMM for AVX2 + FMA (compiled with -mavx2 -mfma; called only after
// the run-time check in gemm.cpp). Row-major C = alpha * op(A) * op(B) + beta * C.
//
// This file holds only what is specific to AVX2: the 8-float ymm vector, the 6 x 16
// micro-tile and the block sizes. The driver (packing, blocking, threading, the dot
// kernel, the swap trick, the micro-kernel's loop) is kernels/cpu/gemm_driver.inc, shared
// with the AVX-512 kernel; its design notes are at its top.
//
// Why 6 x 16: 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers; 12
// independent FMA chains cover the FMA latency (4 cycles) times the two FMA pipes (8 in
// flight needed); per k, 8 loads (2 vectors + 6 broadcasts) against 12 FMAs fit the two to
// three load ports.
//
// Block sizes, for Zen3 (32 KB L1d, 512 KB L2 per core, 32 MB L3 shared):
//   KC = 256: one B sliver is 256 x 16 x 4 B = 16 KB, half of L1, leaving room for the A
//             micro-panel (6 KB) and C lines; long enough that the C-tile load/store per
//             block (6 x 16 floats) is amortised over 256 x 12 FMAs.
//   MC = 144: the A block is 144 x 256 x 4 B = 144 KB, which stays in L2 while every
//             sliver of the item passes through L1 (a multiple of 6).
//   NG = 256: the item's packed B is 256 x 256 x 4 B = 256 KB, so B and the A block
//             (400 KB together) both sit in L2 (Zen3: 512 KB); it is also the cap on the
//             per-thread B buffer. One thread: items span all rows, so B is packed once.
//             More threads: items may also be cut along M; the team then packs each
//             column group's B once into a shared buffer before the items run (share_b,
//             gemm_driver.inc's run_packed).
// (This machine's L1/L2 are larger, 48 KB / 2 MB; these sizes fit both.)
//
// Like the driver, this file uses no C++ library templates (see gemm_driver.inc): an inline
// template instantiated here would be compiled with AVX2, and the linker may pick that copy
// for the rest of the program too, which must run on any x86-64.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "kernels/cpu/gemm_fast.h"

namespace minidl::cpu {
namespace {

// 8-float ymm vectors; masks are vectors of all-ones / all-zeros 32-bit lanes.
struct Isa {
  using V = __m256;
  using Mask = __m256i;
  static constexpr int W = 8, MR = 6, NV = 2;
  static constexpr int64_t KC = 256, MC = 144, NG = 256;

  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V load(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_store_ps(p, v); }  // 32-byte aligned
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }  // a * b + c, one rounding
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  // Lanes [0, n) set (any n: none when n <= 0, all when n >= 8). Masked-off lanes are
  // neither read nor written, and cannot fault.
  static Mask mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 0 ? 0 : n > 8 ? 8 : n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Mask mask_range(int64_t lo, int64_t hi) { return _mm256_andnot_si256(mask(lo), mask(hi)); }  // lanes [lo, hi)
  static Mask mask_bits(uint32_t bits) {  // lane i set where bit i is
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int(bits)), lane), lane);
  }
  // Lane i = p[idx[i] + add] where mask lane i is set, else 0 (off lanes read nothing).
  static V gather(const float* p, const int32_t* idx, int32_t add, Mask m) {
    const __m256i i = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), _mm256_set1_epi32(add));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, i, _mm256_castsi256_ps(m), 4);
  }
  static V maskload(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }  // off lanes read as 0
  static void maskstore(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
  // Lanes 0, 2, 4, 6 of lo then of hi (a stride-2 row of the image, for the implicit GEMM).
  static V even_lanes(V lo, V hi) {
    const __m256 t = _mm256_shuffle_ps(lo, hi, 0x88);  // lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
  }
  static __m256 fold8(V v) { return v; }  // the lanes as 8 partial sums, for hsum (driver)
};

}  // namespace
}  // namespace minidl::cpu

#define MINIDL_SGEMM_ENTRY sgemm_avx2_config
#define MINIDL_SGEMM_IMAGE_ENTRY sgemm_avx2_image
#define MINIDL_SGEMM_PACKED_A_FLOATS sgemm_avx2_packed_a_floats
#define MINIDL_SGEMM_PACK_A sgemm_avx2_pack_a
#define MINIDL_SGEMM_PREPACKED_ENTRY sgemm_avx2_prepacked
#include "kernels/cpu/gemm_driver.inc"
