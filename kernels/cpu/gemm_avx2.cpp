// Fast single-precision GEMM for AVX2 + FMA (compiled with -mavx2 -mfma; called only after
// the run-time check in gemm.cpp). Row-major C = alpha * op(A) * op(B) + beta * C.
//
// The plan (Goto / BLIS):
//
//   C is cut into work items of at most MC rows x NG columns; each is computed over all
//   of K by one thread (below):
//   for pc over K in steps of KC                      (K split evenly into blocks <= KC)
//     pack op(B)[pc:+kc, item's columns] into 16-wide slivers       -> L2 (<= 256 KB)
//     op(A)[item's rows, pc:+kc]: packed into 6-row micro-panels, or read in place when
//     it is already contiguous along K (then the rows themselves are the panel) -> L2
//     for jr over the slivers (16 columns)            one sliver, kc x 16 floats -> L1
//       for ir over the micro-panels (6 rows)         A micro-panel streams from L2
//         micro-kernel: a 6 x 16 tile of C in 12 ymm accumulators; per k it loads two
//         8-float vectors of B, broadcasts 6 values of A, issues 12 FMAs.
//
// Why 6 x 16: 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers; 12
// independent FMA chains cover the FMA latency (4 cycles) times the two FMA pipes (8 in
// flight needed); per k, 8 loads (2 vectors + 6 broadcasts) against 12 FMAs fit the two to
// three load ports. Edge tiles use the same kernel instantiated for 1..6 rows and one or
// two vectors, so no FMA is spent on rows that do not exist; partial columns are
// zero-padded in the packed B and stored with a mask, so nothing past column N is touched.
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
//             More threads: items may also be cut along M, and then each row block packs
//             its B again (~1/rows of the FMAs), which buys items that need nothing from
//             each other (no barriers, no shared buffers).
// (This machine's L1/L2 are larger, 48 KB / 2 MB; these sizes fit both.)
//
// Packing is skipped where it would not pay, which is most of what makes the skinny
// products of ResNet's late layers (N = OH*OW = 16 or 4 per sample) fast:
//  - op(A) contiguous along K (A not transposed) is read in place, 6 row streams, with a
//    software prefetch a few lines ahead (runs of only kc floats per row are too short for
//    the hardware prefetcher); it is packed only for items >= 256 columns wide, where each
//    micro-panel is reused by 16+ slivers.
//  - op(B) contiguous along N is read in place by items of <= 18 rows, which use each
//    sliver at most three times (prefetching each row's line 8 rows ahead: rows are far
//    apart, and the early prefetch also starts the page walk).
//  - the dot-product kernel, when one side is <= 8 and op(A) is contiguous along K: there
//    the packed kernel would waste most of its 16 lanes, and packing the big operand (the
//    weights) costs as much as using it once. The rows of A are read in place, vectorised
//    along K, against up to 4 columns of B (packed as rows along K, or read in place when
//    already so), 12 accumulators, horizontal sums at the end.
//  - swapping: C^T = op(B)^T op(A)^T is the same product with the roles of rows and
//    columns exchanged (C written with transposed strides, through a small buffer). Used
//    when N < 16 and M is larger, so that the small side lands on the micro-kernel's rows
//    (a partial tile costs nothing there) instead of its 16 lanes; and when N <= 18 and
//    op(A) is A^T (conv's backward-data GEMM W^T dY), so that W's rows become a B read in
//    place and only the small dY is packed.
//
// Threads: outside a parallel region (and above a size threshold) the items are made
// small enough that there are >= 4 per thread and handed out dynamically (a thread the OS
// pauses on a shared machine then costs one item, not half the product). No element is
// split across items and the K blocking depends only on K, so results are bit-identical
// for any thread count and any order the items run in. Inside an outer parallel region
// (conv's parallel-over-samples) everything runs on the calling thread.
//
// Accuracy: products are accumulated in float in the registers (as every fast BLAS does),
// in a fixed order: along k within a K block, then added to C block after block (the dot
// kernel: 8 partial sums along k, then across lanes). On ResNet-sized random products the
// error is ~5e-7 of max |C| (as OpenBLAS); gemm_reference (double accumulation) is the
// accurate one. Measured errors are in docs/performance.md.
//
// This file deliberately uses no C++ library templates (std::min, std::vector, ...): an
// inline template instantiated here would be compiled with AVX2, and the linker may pick
// that copy for the rest of the program too, which must run on any x86-64.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "kernels/cpu/gemm_fast.h"

namespace minidl::cpu {

namespace {

constexpr int kMR = 6;                         // micro-tile rows (broadcast side)
constexpr int kNR = 16;                        // micro-tile columns (two 8-float vectors)
constexpr int64_t kKC = 256;                   // K block (see the block sizes above)
constexpr int64_t kMC = 144;                   // rows of A per block
constexpr int64_t kNG = 256;                   // columns per work item
constexpr int64_t kPackAMinCols = 256;         // items this wide pack op(A) even when it could be read in place
constexpr int64_t kDirectBMaxRows = 3 * kMR;   // items this short read a row-contiguous op(B) in place
constexpr int64_t kPrefetchA = 64;             // floats (4 lines) ahead in each row of A read in place
constexpr int64_t kPrefetchB = 8;              // rows ahead in a B read in place
constexpr int64_t kDotMaxN = 8;                // the dot kernel takes products with a side this small
constexpr int64_t kDotKC = 4096;               // K block of the dot kernel when B must be packed
// Below this many multiply-adds (about 40 us on one core) a parallel region is not worth
// its start-up and the duplicated packing.
constexpr int64_t kParallelMinMacs = int64_t(1) << 21;

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// op(X) as a strided view: element (i, j) is p[i * rs + j * cs].
struct View {
  const float* p;
  int64_t rs, cs;
};

struct Problem {
  int64_t M, N, K;
  float alpha, beta;
  View a;  // M x K
  View b;  // K x N
  float* c;
  int64_t c_rs, c_cs;
};

// The same product as C^T = op(B)^T op(A)^T: rows and columns exchange roles.
Problem swapped(const Problem& P) {
  return Problem{P.N, P.M, P.K, P.alpha, P.beta, View{P.b.p, P.b.cs, P.b.rs}, View{P.a.p, P.a.cs, P.a.rs},
                 P.c, P.c_cs, P.c_rs};
}

// One growable, 64-byte aligned scratch buffer per thread and purpose; it never shrinks
// and is bounded by one panel: KC x NG floats for B (256 KB; the dot kernel's 8 x 4096
// fits in it), MC x KC for A (144 KB).
struct Scratch {
  float* p = nullptr;
  int64_t n = 0;
  ~Scratch() { std::free(p); }
  float* get(int64_t floats) {
    if (floats > n) {
      std::free(p);
      const size_t bytes = size_t(round_up(floats * int64_t(sizeof(float)), 64));
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) {
        std::fprintf(stderr, "minidl: sgemm could not allocate %zu bytes of packing buffer\n", bytes);
        std::abort();  // inside an OpenMP region an exception cannot reach the caller
      }
      n = floats;
    }
    return p;
  }
};
thread_local Scratch tl_apack, tl_bpack;

// Lanes [0, n) set, for masked loads and stores of a partial 8-float vector.
inline __m256i lane_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// ---------------------------------------------------------------------------- packing

// In-register 8x8 transpose of r[0..7].
inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// op(B)[p0:+kc, j0:+nc] -> slivers of 16 columns: sliver s holds kc rows of 16 floats at
// dst + s*kc*16, columns past nc zero. The transposes are absorbed here: a row-contiguous
// op(B) is copied 16 floats at a time, a column-contiguous one (B^T stored row-major) is
// transposed 8x8 at a time.
void pack_b(const View& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  const int64_t full = nc / kNR, rest = nc - full * kNR;  // whole slivers, columns left over
  if (b.cs == 1) {
    // Row by row: each row of op(B) is read front to back (one page, prefetch-friendly even
    // when rows are far apart) and dealt out to the slivers.
    const __m256i m0 = lane_mask(rest), m1 = lane_mask(rest - 8);
    for (int64_t p = 0; p < kc; ++p) {
      const float* r = b.p + (p0 + p) * b.rs + j0;
      float* d = dst + p * kNR;
      for (int64_t s = 0; s < full; ++s) {
        _mm256_store_ps(d + s * kc * kNR, _mm256_loadu_ps(r + s * kNR));
        _mm256_store_ps(d + s * kc * kNR + 8, _mm256_loadu_ps(r + s * kNR + 8));
      }
      if (rest) {
        _mm256_store_ps(d + full * kc * kNR, _mm256_maskload_ps(r + full * kNR, m0));
        _mm256_store_ps(d + full * kc * kNR + 8, _mm256_maskload_ps(r + full * kNR + 8, m1));
      }
    }
    return;
  }
  for (int64_t s = 0; s * kNR < nc; ++s) {
    const int64_t j = j0 + s * kNR, n = imin(kNR, nc - s * kNR);
    float* d = dst + s * kc * kNR;
    if (b.rs == 1 && n == kNR) {
      const float* src = b.p + j * b.cs + p0;  // column j + c starts at src + c*cs
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8)
        for (int half = 0; half < 2; ++half) {
          __m256 r[8];
          for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(src + (half * 8 + c) * b.cs + p);
          transpose8(r);
          for (int q = 0; q < 8; ++q) _mm256_store_ps(d + (p + q) * kNR + half * 8, r[q]);
        }
      for (; p < kc; ++p)
        for (int c = 0; c < kNR; ++c) d[p * kNR + c] = src[c * b.cs + p];
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t c = 0; c < n; ++c) d[p * kNR + c] = b.p[(p0 + p) * b.rs + (j + c) * b.cs];
        for (int64_t c = n; c < kNR; ++c) d[p * kNR + c] = 0.f;
      }
    }
  }
}

// op(A)[i0:+mc, p0:+kc] -> micro-panels of 6 rows: panel q holds, for each k, the 6 values
// of its rows at dst + q*kc*6 + k*6 (rows past mc zero). A column-contiguous op(A) (A^T
// stored row-major, as in conv's backward-data GEMM) is packed k by k: each row of A^T is
// read front to back and dealt out 6 floats at a time (one page per k, not one per k and
// panel, which thrashed the TLB when its rows are far apart).
void pack_a(const View& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  const int64_t full = mc / kMR, rest = mc - full * kMR;
  if (a.rs == 1) {
    for (int64_t p = 0; p < kc; ++p) {
      const float* r = a.p + i0 + (p0 + p) * a.cs;
      float* d = dst + p * kMR;
      for (int64_t q = 0; q < full; ++q) {
        _mm_storeu_ps(d + q * kc * kMR, _mm_loadu_ps(r + q * kMR));  // 4 + 2 floats
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d + q * kc * kMR + 4),
                         _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + q * kMR + 4)));
      }
      if (rest) {
        float* dq = d + full * kc * kMR;
        for (int64_t x = 0; x < rest; ++x) dq[x] = r[full * kMR + x];
        for (int64_t x = rest; x < kMR; ++x) dq[x] = 0.f;
      }
    }
    return;
  }
  for (int64_t q = 0; q * kMR < mc; ++q) {
    const int64_t i = i0 + q * kMR, m = imin(kMR, mc - q * kMR);
    float* d = dst + q * kc * kMR;
    for (int64_t p = 0; p < kc; ++p) {
      for (int64_t x = 0; x < m; ++x) d[p * kMR + x] = a.p[(i + x) * a.rs + (p0 + p) * a.cs];
      for (int64_t x = m; x < kMR; ++x) d[p * kMR + x] = 0.f;
    }
  }
}

// ----------------------------------------------------------------------- micro-kernel

// C[0:MR_, 0:n] = alpha * sum_k a(r, k) b(k, 0:n) + beta * C (beta == 0: C not read).
// A_DIRECT: a points at op(A)(i, p0), rows a_rs apart, contiguous along k; otherwise a is
// a packed micro-panel (6 floats per k). B_DIRECT: b points at op(B)(p0, j), k rows b_rs
// apart, each with >= NV*8 valid floats; otherwise b is a packed sliver (16 floats per k).
// Every element gets the same chain of FMAs whichever MR_/NV/store path handles it, so
// edge tiles and thread splits cannot change a bit.
template <int MR_, int NV, bool A_DIRECT, bool B_DIRECT>
void micro_tile(int64_t kc, const float* a, int64_t a_rs, const float* b, int64_t b_rs, float* c, int64_t c_rs,
                int64_t c_cs, int64_t n, float alpha, float beta) {
  __m256 acc[MR_][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR_; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();

  if (c_cs == 1)  // the C tile is written at the end: start bringing its lines in now
#pragma GCC unroll 8
    for (int r = 0; r < MR_; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * c_rs), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * c_rs + NV * 8 - 1), _MM_HINT_T0);
    }

  auto step = [&](int64_t p) __attribute__((always_inline)) {
    if constexpr (B_DIRECT) {  // rows of B far apart: start each row's page walk and line early
      const float* ahead = b + (p + kPrefetchB) * b_rs;
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + NV * 8 - 1), _MM_HINT_T0);
    }
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = B_DIRECT ? _mm256_loadu_ps(b + p * b_rs + v * 8) : _mm256_load_ps(b + p * kNR + v * 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR_; ++r) {
      const __m256 av = _mm256_broadcast_ss(A_DIRECT ? a + r * a_rs + p : a + p * kMR + r);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  };
  int64_t p = 0;
  if constexpr (A_DIRECT) {
    // Rows of A read in place arrive from L2 or L3 in runs of only kc floats, too short
    // for the hardware prefetcher to lock on: ask for each row's line kPrefetchA ahead.
    for (; p + 16 <= kc; p += 16) {
#pragma GCC unroll 8
      for (int r = 0; r < MR_; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(a + r * a_rs + p + kPrefetchA), _MM_HINT_T0);
#pragma GCC unroll 4
      for (int q = 0; q < 16; ++q) step(p + q);
    }
  }
#pragma GCC unroll 4
  for (; p < kc; ++p) step(p);

  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (c_cs == 1) {
    if (n == NV * 8) {
#pragma GCC unroll 8
      for (int r = 0; r < MR_; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
          float* cp = c + r * c_rs + v * 8;
          const __m256 out = beta == 0.f ? _mm256_mul_ps(va, acc[r][v])
                                         : _mm256_fmadd_ps(va, acc[r][v], _mm256_mul_ps(vb, _mm256_loadu_ps(cp)));
          _mm256_storeu_ps(cp, out);
        }
    } else {
      __m256i mask[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) mask[v] = lane_mask(n - v * 8);
#pragma GCC unroll 8
      for (int r = 0; r < MR_; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) {
          float* cp = c + r * c_rs + v * 8;
          const __m256 out =
              beta == 0.f ? _mm256_mul_ps(va, acc[r][v])
                          : _mm256_fmadd_ps(va, acc[r][v], _mm256_mul_ps(vb, _mm256_maskload_ps(cp, mask[v])));
          _mm256_maskstore_ps(cp, mask[v], out);
        }
    }
  } else {
    // C with strided columns (the swapped product writes C^T): through a small buffer,
    // with exactly the vector path's arithmetic (one rounding for alpha*acc + beta*c).
    alignas(32) float t[MR_][NV * 8];
#pragma GCC unroll 8
    for (int r = 0; r < MR_; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) _mm256_store_ps(&t[r][v * 8], acc[r][v]);
    for (int r = 0; r < MR_; ++r)
      for (int64_t x = 0; x < n; ++x) {
        float* cp = c + r * c_rs + x * c_cs;
        *cp = beta == 0.f ? alpha * t[r][x] : __builtin_fmaf(alpha, t[r][x], beta * *cp);
      }
  }
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t, int64_t,
                        float, float);

template <bool A_DIRECT, bool B_DIRECT>
TileFn tile_fn(int64_t m, int64_t n) {
  static constexpr TileFn one[kMR] = {
      micro_tile<1, 1, A_DIRECT, B_DIRECT>, micro_tile<2, 1, A_DIRECT, B_DIRECT>, micro_tile<3, 1, A_DIRECT, B_DIRECT>,
      micro_tile<4, 1, A_DIRECT, B_DIRECT>, micro_tile<5, 1, A_DIRECT, B_DIRECT>, micro_tile<6, 1, A_DIRECT, B_DIRECT>};
  static constexpr TileFn two[kMR] = {
      micro_tile<1, 2, A_DIRECT, B_DIRECT>, micro_tile<2, 2, A_DIRECT, B_DIRECT>, micro_tile<3, 2, A_DIRECT, B_DIRECT>,
      micro_tile<4, 2, A_DIRECT, B_DIRECT>, micro_tile<5, 2, A_DIRECT, B_DIRECT>, micro_tile<6, 2, A_DIRECT, B_DIRECT>};
  return n > 8 ? two[m - 1] : one[m - 1];
}

TileFn pick_tile(bool a_direct, bool b_direct, int64_t m, int64_t n) {
  if (a_direct) return b_direct ? tile_fn<true, true>(m, n) : tile_fn<true, false>(m, n);
  return b_direct ? tile_fn<false, true>(m, n) : tile_fn<false, false>(m, n);
}

// One work item: the block C[i0:i1, j0:j1] (at most NG columns, any number of rows) over
// all of K, on the calling thread, with its own packing buffers. K is cut into equal
// blocks <= KC that depend on K only (so every element's summation order is fixed by the
// shape), e.g. K = 260 -> 2 x 130 rather than 256 + 4. op(A) is read in place when it is
// contiguous along K and cfg.in_place allows, unless the item is wide enough (>= kPackAMinCols)
// that each micro-panel is reused by many slivers: then packing it (sequential reads in
// the kernel) pays for itself.
void packed_item(const Problem& P, const SgemmConfig& cfg, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const int64_t kblocks = ceil_div(P.K, kKC), kcb = ceil_div(P.K, kblocks);
  const int64_t nc = j1 - j0;
  const bool a_direct = cfg.in_place && P.a.cs == 1 && nc < kPackAMinCols;
  // A short item (<= kDirectBMaxRows rows) uses each sliver of B at most a few times:
  // packing B would cost more than it saves, so whole slivers of a row-contiguous op(B)
  // are read in place; only a partial last sliver is packed (zero-padded).
  const bool b_direct = cfg.in_place && P.b.cs == 1 && i1 - i0 <= kDirectBMaxRows;
  const int64_t full = nc / kNR, packed_from = b_direct ? full * kNR : 0;
  float* bbuf = tl_bpack.get(kcb * round_up(nc - packed_from, kNR) + 1);
  float* abuf = a_direct ? nullptr : tl_apack.get(kcb * round_up(imin(kMC, i1 - i0), kMR));
  for (int64_t pc = 0; pc < P.K; pc += kcb) {
    const int64_t kc = imin(kcb, P.K - pc);
    const float beta = pc == 0 ? P.beta : 1.f;  // later K blocks add to what is there
    if (packed_from < nc) pack_b(P.b, pc, kc, j0 + packed_from, nc - packed_from, bbuf);  // once, for all rows
    for (int64_t ic = i0; ic < i1; ic += kMC) {
      const int64_t mc = imin(kMC, i1 - ic);
      if (!a_direct) pack_a(P.a, ic, mc, pc, kc, abuf);
      for (int64_t jr = 0; jr < nc; jr += kNR) {  // one sliver (L1) ...
        const int64_t n = imin(kNR, nc - jr);
        const bool bd = jr < packed_from;
        const float* bs = bd ? P.b.p + pc * P.b.rs + j0 + jr : bbuf + ((jr - packed_from) / kNR) * kc * kNR;
        for (int64_t ir = 0; ir < mc; ir += kMR) {  // ... against every micro-panel of the block (L2)
          const int64_t m = imin(kMR, mc - ir);
          float* c = P.c + (ic + ir) * P.c_rs + (j0 + jr) * P.c_cs;
          const float* a = a_direct ? P.a.p + (ic + ir) * P.a.rs + pc : abuf + (ir / kMR) * kc * kMR;
          pick_tile(a_direct, bd, m, n)(kc, a, P.a.rs, bs, P.b.rs, c, P.c_rs, P.c_cs, n, P.alpha, beta);
        }
      }
    }
  }
}

// ------------------------------------------------------------------- dot-product kernel

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// C[0:R, 0:CC] = alpha * (rows of A) . (rows of Bt) + beta * C, over kd values of k.
// A rows a_rs apart and Bt rows bt_rs apart, both contiguous along k. Each element is
// summed in 8 lanes along k (a masked tail for kd % 8) and then across the lanes in a
// fixed order, whichever R/CC tile handles it.
template <int R, int CC>
void dot_tile(int64_t kd, const float* a, int64_t a_rs, const float* bt, int64_t bt_rs, float* c, int64_t c_rs,
              int64_t c_cs, float alpha, float beta) {
  __m256 acc[R][CC];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < CC; ++j) acc[r][j] = _mm256_setzero_ps();
  int64_t p = 0;
#pragma GCC unroll 2
  for (; p + 8 <= kd; p += 8) {
    // Hold the smaller side in registers and stream the other: R*CC + min(R, CC) + 1 <= 16.
    if constexpr (R <= CC) {
      __m256 av[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) av[r] = _mm256_loadu_ps(a + r * a_rs + p);
#pragma GCC unroll 4
      for (int j = 0; j < CC; ++j) {
        const __m256 bv = _mm256_loadu_ps(bt + j * bt_rs + p);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r][j] = _mm256_fmadd_ps(av[r], bv, acc[r][j]);
      }
    } else {
      __m256 bv[CC];
#pragma GCC unroll 4
      for (int j = 0; j < CC; ++j) bv[j] = _mm256_loadu_ps(bt + j * bt_rs + p);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 av = _mm256_loadu_ps(a + r * a_rs + p);
#pragma GCC unroll 4
        for (int j = 0; j < CC; ++j) acc[r][j] = _mm256_fmadd_ps(av, bv[j], acc[r][j]);
      }
    }
  }
  if (p < kd) {
    const __m256i mask = lane_mask(kd - p);
    __m256 bv[CC];
#pragma GCC unroll 4
    for (int j = 0; j < CC; ++j) bv[j] = _mm256_maskload_ps(bt + j * bt_rs + p, mask);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_maskload_ps(a + r * a_rs + p, mask);
#pragma GCC unroll 4
      for (int j = 0; j < CC; ++j) acc[r][j] = _mm256_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < CC; ++j) {
      float* cp = c + r * c_rs + j * c_cs;
      const float s = hsum(acc[r][j]);
      *cp = beta == 0.f ? alpha * s : __builtin_fmaf(alpha, s, beta * *cp);
    }
}

using DotFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t, float, float);

// Rows per tile for CC columns: R * CC <= 12 accumulators, and >= 8 independent chains.
constexpr int kDotRows[5] = {0, 8, 6, 4, 3};

template <int CC, int... Rs>
constexpr DotFn dot_pick(int r, std::integer_sequence<int, Rs...>) {
  DotFn fns[] = {dot_tile<Rs + 1, CC>...};
  return fns[r - 1];
}

DotFn dot_fn(int64_t rows, int64_t cols) {
  switch (cols) {
    case 1: return dot_pick<1>(int(rows), std::make_integer_sequence<int, kDotRows[1]>{});
    case 2: return dot_pick<2>(int(rows), std::make_integer_sequence<int, kDotRows[2]>{});
    case 3: return dot_pick<3>(int(rows), std::make_integer_sequence<int, kDotRows[3]>{});
    default: return dot_pick<4>(int(rows), std::make_integer_sequence<int, kDotRows[4]>{});
  }
}

// Rows [m0, m1) of a product with N <= kDotMaxN and op(A) contiguous along K, over the K
// range [pc, pc + kd), op(B)'s columns given as rows along k (bt, bt_rs).
void dot_rows(const Problem& P, int64_t m0, int64_t m1, int64_t pc, int64_t kd, const float* bt, int64_t bt_rs,
              float beta) {
  for (int64_t j0 = 0; j0 < P.N; j0 += 4) {
    const int64_t cc = imin(4, P.N - j0), R = kDotRows[cc];
    for (int64_t i = m0; i < m1; i += R) {
      const int64_t r = imin(R, m1 - i);
      dot_fn(r, cc)(kd, P.a.p + i * P.a.rs + pc, P.a.rs, bt + j0 * bt_rs, bt_rs, P.c + i * P.c_rs + j0 * P.c_cs,
                    P.c_rs, P.c_cs, P.alpha, beta);
    }
  }
}

// op(B)[pc:+kd, :] as N rows along k: buf[j * ld + p].
void pack_bt(const View& b, int64_t N, int64_t pc, int64_t kd, float* buf, int64_t ld) {
  for (int64_t p = 0; p < kd; ++p)
    for (int64_t j = 0; j < N; ++j) buf[j * ld + p] = b.p[(pc + p) * b.rs + j * b.cs];
}

// ------------------------------------------------------------------------- the driver

int threads_for(const Problem& P, const SgemmConfig& cfg) {
  if (omp_in_parallel()) return 1;
  const int64_t want = cfg.max_threads > 0 ? cfg.max_threads : omp_get_max_threads();
  if (want <= 1 || P.M * P.N * P.K < kParallelMinMacs) return 1;
  return int(want);
}

void run_packed(const Problem& P, const SgemmConfig& cfg) {
  const int nt = threads_for(P, cfg);
  // Work items: blocks of R rows x G columns of C, each computed over all of K by one
  // thread. One thread: all rows, NG columns (B is packed once per K block and used by
  // every row). More threads: smaller blocks until there are >= 4 per thread, handed out
  // dynamically, so a thread that the OS pauses (the machine is shared) does not hold the
  // others up for long. An item reads R x K of A and packs K x G of B for R x G x K
  // multiply-adds, so the longer side is halved each time (items stay close to square).
  int64_t R = round_up(P.M, kMR), G = imin(kNG, round_up(P.N, kNR));
  auto items = [&] { return ceil_div(P.M, R) * ceil_div(P.N, G); };
  if (nt > 1)
    while (items() < 4 * nt) {
      if (G >= 2 * kNR && (G >= R || R < 2 * kMR)) G = round_up(ceil_div(G, 2), kNR);
      else if (R >= 2 * kMR) R = round_up(ceil_div(R, 2), kMR);
      else break;
    }
  const int64_t ng = ceil_div(P.N, G), n_items = items();
  auto run = [&](int64_t it) {
    const int64_t rb = it / ng, g = it % ng;  // consecutive items share rows of A
    packed_item(P, cfg, rb * R, imin(P.M, (rb + 1) * R), g * G, imin(P.N, (g + 1) * G));
  };
  if (nt == 1 || n_items == 1) {
    for (int64_t it = 0; it < n_items; ++it) run(it);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t it = 0; it < n_items; ++it) run(it);
}

void run_dot(const Problem& P, const SgemmConfig& cfg) {
  const int nt = threads_for(P, cfg);
  // op(B)'s columns as rows along k: in place when B^T is stored row-major (op(B).rs == 1);
  // otherwise packed once per K block (<= kDotKC) into the calling thread's buffer, which
  // the team shares read-only.
  const bool bt_direct = P.b.rs == 1;
  const int64_t kblocks = bt_direct ? 1 : ceil_div(P.K, kDotKC), kdb = ceil_div(P.K, kblocks);
  const int64_t ldbt = bt_direct ? P.b.cs : round_up(kdb, 8);
  float* buf = bt_direct ? nullptr : tl_bpack.get(P.N * ldbt);
  auto bt_at = [&](int64_t pc) { return bt_direct ? P.b.p + pc : buf; };
  // Items of RI rows (a multiple of every tile height: 8, 6, 4, 3), >= 4 per thread.
  const int64_t RI = nt == 1 ? P.M : imax(24, round_up(ceil_div(P.M, 4 * nt), 24)), n_items = ceil_div(P.M, RI);
  if (nt == 1 || n_items == 1) {
    for (int64_t pc = 0; pc < P.K; pc += kdb) {
      const int64_t kd = imin(kdb, P.K - pc);
      if (!bt_direct) pack_bt(P.b, P.N, pc, kd, buf, ldbt);
      dot_rows(P, 0, P.M, pc, kd, bt_at(pc), ldbt, pc == 0 ? P.beta : 1.f);
    }
    return;
  }
#pragma omp parallel num_threads(nt)
  for (int64_t pc = 0; pc < P.K; pc += kdb) {
    const int64_t kd = imin(kdb, P.K - pc);
    if (!bt_direct) {
#pragma omp single
      pack_bt(P.b, P.N, pc, kd, buf, ldbt);  // the implied barrier publishes it
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < n_items; ++it)
      dot_rows(P, it * RI, imin(P.M, (it + 1) * RI), pc, kd, bt_at(pc), ldbt, pc == 0 ? P.beta : 1.f);
    // the for's implied barrier: this K block is complete before the next one adds to C
  }
}

}  // namespace

void sgemm_avx2_config(const SgemmConfig& cfg, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                       int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) {  // no products: C = beta * C (A and B are not read)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
  const Problem P{M,
                  N,
                  K,
                  alpha,
                  beta,
                  trans_a ? View{A, 1, lda} : View{A, lda, 1},
                  trans_b ? View{B, 1, ldb} : View{B, ldb, 1},
                  C,
                  ldc,
                  1};
  // Every choice below depends on the shape and transposes only (never on threads).
  if (cfg.allow_dot && imin(M, N) <= kDotMaxN) {
    // The small side as N for the dot kernel, which needs op(A) contiguous along K.
    const Problem D = (N <= M || !cfg.allow_swap) ? P : swapped(P);
    if (D.N <= kDotMaxN && D.a.cs == 1) return run_dot(D, cfg);
  }
  // The packed kernel wastes lanes on a narrow N but nothing on short M: put the small
  // side on the rows.
  // So does a column-contiguous op(A) (A^T stored, conv's backward-data GEMM) with few
  // columns: swapped, A^T's rows become a B read in place and only the small op(B) is packed.
  if (cfg.allow_swap && M > N && (N < kNR || (N <= kDirectBMaxRows && P.a.rs == 1)))
    return run_packed(swapped(P), cfg);
  run_packed(P, cfg);
}

void sgemm_avx2(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  static const SgemmConfig defaults{};
  sgemm_avx2_config(defaults, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace minidl::cpu
