// Fast single-precision GEMM for AVX-512 (compiled with -mavx512f -mavx512vl -mavx512bw
// -mavx512dq -mfma -mavx2; called only after the run-time check in gemm.cpp, which also
// asks the OS whether it saves the zmm and mask registers). Row-major
// C = alpha * op(A) * op(B) + beta * C.
//
// This file holds only what is specific to AVX-512: the 16-float zmm vector, its mask
// registers, the 8 x 32 micro-tile and the block sizes. The driver (packing, blocking,
// threading, the dot kernel, the swap trick, the micro-kernel's loop) is
// kernels/cpu/gemm_driver.inc, shared with the AVX2 kernel; its design notes are at its top.
//
// Why 8 x 32 (two zmm per row of the tile, 8 rows):
//  - the 32-float width: one zmm per row (MR x 16) would need one broadcast per FMA and be
//    load-bound; three (MR x 48) would waste lanes on the per-sample ResNet products
//    (N = 64 or 16) and leave at most 9 rows.
//  - latency: 16 independent FMA chains against 4 cycles x 2 FMA pipes = 8 in flight.
//  - loads: per k, 2 vector loads + 8 broadcasts feed 16 FMAs (8 cycles of FMA against 5 of
//    loads on two load ports), so the FMA pipes stay the bottleneck.
//  - registers: 16 accumulators + 2 B vectors + 1 broadcast = 19 of the 32 zmm. Up to 14
//    rows would fit (28 + 3 = 31), and 12 (24 accumulators, BLIS's choice for Skylake-X)
//    loads slightly less per FMA; measured on this machine (one thread, 9 ResNet50 and
//    square shapes, alternated, medians of per-repetition ratios), 8 x 32 was as fast as or
//    1-7 % faster than 12 x 32, and 14 x 32 3-14 % slower on the products with 16 rows
//    (layer3's backward-data product, swapped: 8 + 8 rows, against 12 + 4 or 14 + 2; at
//    the time the per-sample layer3 forward was swapped too). 8 also divides the row
//    blocks (144) and the dot kernel's 24-row items.
//  - mask registers make partial columns cheap: a masked load/store per vector, no
//    scalar tail.
//
// Block sizes (this machine: 48 KB L1d, 2 MB L2 per core):
//   KC = 256: one B sliver is 256 x 32 x 4 B = 32 KB, two thirds of L1, with the A
//             micro-panel (8 KB) streaming past it from L2. The C tile's load/store per
//             K block is amortised over 256 x 16 FMAs. KC = 384 measured the same (within
//             the noise of a shared machine), so the AVX2 kernel's K blocking is kept: the
//             two kernels then sum every element of C in the same order on the packed path
//             (each lane accumulates one element along k) and give the same bits there;
//             only the dot kernel (products with a side <= 8) differs, 16 lanes along k
//             instead of 8.
//   MC = 144: the A block is 144 x 256 x 4 B = 144 KB, resident in L2 (a multiple of 8).
//   NG = 256: the item's packed B is 256 KB; with the A block, 400 KB of the 2 MB L2.
//
// Like the driver, this file uses no C++ library templates (see gemm_driver.inc): an inline
// template instantiated here would be compiled with AVX-512, and the linker may pick that
// copy for the rest of the program too, which must run on any x86-64.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "kernels/cpu/gemm_fast.h"

namespace minidl::cpu {
namespace {

// 16-float zmm vectors; masks are 16-bit mask registers (bit i = lane i).
struct Isa {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16, MR = 8, NV = 2;
  static constexpr int64_t KC = 256, MC = 144, NG = 256;

  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }  // vbroadcastss from memory
  static V load(const float* p) { return _mm512_load_ps(p); }    // 64-byte aligned
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_store_ps(p, v); }  // 64-byte aligned
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }  // a * b + c, one rounding
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  // Lanes [0, n) set (any n: none when n <= 0, all when n >= 16). Masked-off lanes are
  // neither read nor written, and cannot fault.
  static Mask mask(int64_t n) { return Mask(n <= 0 ? 0u : n >= 16 ? 0xFFFFu : (1u << n) - 1u); }
  static Mask mask_range(int64_t lo, int64_t hi) { return Mask(mask(hi) & ~mask(lo)); }  // lanes [lo, hi)
  static Mask mask_bits(uint32_t bits) { return Mask(bits); }  // lane i set where bit i is
  // Lane i = p[idx[i] + add] where mask lane i is set, else 0 (off lanes read nothing).
  static V gather(const float* p, const int32_t* idx, int32_t add, Mask m) {
    const __m512i i = _mm512_add_epi32(_mm512_loadu_si512(idx), _mm512_set1_epi32(add));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, i, p, 4);
  }
  static V maskload(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }  // off lanes read as 0
  static void maskstore(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  // Lanes 0, 2, ..., 14 of lo then of hi (a stride-2 row of the image, for the implicit GEMM).
  static V even_lanes(V lo, V hi) {
    return _mm512_permutex2var_ps(lo, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), hi);
  }
  // The 16 lanes as 8 partial sums (lane i + lane i+8), for hsum (driver). Not
  // _mm512_castps512_ps256 for the low half: with GCC 12 it trips -Wuninitialized inside
  // its own header (so does _mm512_reduce_add_ps).
  static __m256 fold8(V v) { return _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1)); }
};

}  // namespace
}  // namespace minidl::cpu

#define MINIDL_SGEMM_ENTRY sgemm_avx512_config
#define MINIDL_SGEMM_IMAGE_ENTRY sgemm_avx512_image
#define MINIDL_SGEMM_PACKED_A_FLOATS sgemm_avx512_packed_a_floats
#define MINIDL_SGEMM_PACK_A sgemm_avx512_pack_a
#define MINIDL_SGEMM_PREPACKED_ENTRY sgemm_avx512_prepacked
#include "kernels/cpu/gemm_driver.inc"
