// The fast SGEMMs behind cpu::gemm<float> (issue 5): packed panels, cache blocking, a
// register-blocked micro-kernel and OpenMP across blocks, in two instruction sets that
// share one driver (kernels/cpu/gemm_driver.inc, design notes at its top): AVX2/FMA
// (gemm_avx2.cpp, 6 x 16 tiles of ymm) and AVX-512 (gemm_avx512.cpp, 8 x 32 tiles of zmm).
// Same contract as gemm() in gemm.h: row-major C = alpha * op(A) * op(B) + beta * C, any
// M, N, K, any leading dimensions, beta == 0 never reads C.
//
// Determinism: for a given kernel, which code path runs, and the order in which each
// element of C is summed, depend only on (M, N, K, transposes); threads split C into
// disjoint blocks. So a result is bit-identical for any thread count, and whether or not
// it is called from inside an outer parallel region (it then runs on the calling thread
// alone). The two kernels sum in different orders (vector and tile widths differ), so they
// agree with each other to rounding only.
#pragma once
#include <cstdint>

namespace minidl::cpu {

// True when this CPU has AVX2 and FMA and the OS saves the ymm registers (checked once, at
// run time).
bool cpu_has_avx2_fma();
// True when this CPU has AVX-512 F, VL, BW and DQ (and AVX2/FMA) and the OS saves the zmm
// and mask registers (XCR0, read with xgetbv).
bool cpu_has_avx512();

// The kernels take a config: switches for the benchmark's ablation (what each step buys);
// gemm<float> always passes the defaults. Each switch only narrows which paths may be
// taken, so every setting computes the same product (to rounding).
struct SgemmConfig {
  bool allow_dot = true;    // skinny products (one side <= 8) through the dot-product kernel
  bool allow_swap = true;   // compute C^T = op(B)^T op(A)^T when that puts the small side on the rows
  bool in_place = true;     // read op(A) or op(B) in place where packing it would not pay
  int max_threads = 0;      // 0: omp_get_max_threads(); always 1 inside a parallel region
  bool share_b = true;      // threads splitting the rows pack each column block of op(B) once, together
};
void sgemm_avx2_config(const SgemmConfig& cfg, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                       int64_t ldc);
void sgemm_avx512_config(const SgemmConfig& cfg, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                         float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                         int64_t ldc);
// sgemm_avx2_config may only be called when cpu_has_avx2_fma(), sgemm_avx512_config when
// cpu_has_avx512().

// Implicit GEMM for convolution (no im2col buffer): op(B) is the im2col matrix of `samples`
// NCHW images side by side, [C*KH*KW, samples*OH*OW], never materialised; the driver packs
// its B panels straight from the images. Element (k, n), k = (c*KH + p)*KW + q,
// n = (s*OH + i)*OW + j, is x[s*sample_stride + (c*H + h)*W + w] with h = i*SH - PH + p and
// w = j*SW - PW + q, or 0 where (h, w) lies outside the H x W image (the padding).
// A plain struct (no member functions): the driver is compiled per ISA and must not
// instantiate inline functions the rest of the program could link to.
struct SgemmImage {
  const float* x;
  int64_t samples, sample_stride;
  int64_t C, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
};
// C[M, N] = alpha * A[M, K] * op(B) + beta * C, A row-major (lda), op(B) the image's columns
// (N = samples*OH*OW, K = C*KH*KW). Always the packed kernel (never the dot kernel or the
// swap), so the result is bit-identical to the dense call with the materialised im2col
// matrix whenever that call takes the packed kernel unswapped: for N >= 16 (N > 8 avoids
// the dot kernel, N >= the vector width the swap). Smaller N is correct but slow.
void sgemm_avx2_image(const SgemmConfig& cfg, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const SgemmImage& b, float beta, float* C, int64_t ldc);
void sgemm_avx512_image(const SgemmConfig& cfg, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const SgemmImage& b, float beta, float* C, int64_t ldc);
// The selected kernel's sgemm_*_image with the default config; false (and nothing computed)
// when the selected kernel is the reference, which has no implicit form.
bool sgemm_image(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const SgemmImage& b, float* C,
                 int64_t ldc);

// A packed in advance, for many products with the same A (conv's forward: the weights, once
// per call instead of once per sample). sgemm_*_pack_a writes op(A) [M, K] (A row-major, lda;
// op(A) = A^T when trans_a, as gemm()) as
// the kernel's own micro-panels into dst, sgemm_*_packed_a_floats(M, K) floats: part
// `part` of `parts` (0 <= part < parts) packs its share of the rows, so the parts may run on
// different threads, and all `parts` of them together pack the whole of A; the layout
// is the ISA's (tile and K-block sizes), so only the same ISA's sgemm_*_prepacked may read
// it. sgemm_*_prepacked: C[M, N] = op(A) * op(B) (alpha 1, beta 0), op(B) a row-major B (ldb)
// or, when img is non-null, the image's columns (B unused). Always the packed kernel,
// unswapped, as sgemm_*_image: bit-identical to the dense call wherever that takes the packed
// kernel unswapped (not transposed: N >= 16; transposed: N >= 25, where it stops swapping).
int64_t sgemm_avx2_packed_a_floats(int64_t M, int64_t K);
int64_t sgemm_avx512_packed_a_floats(int64_t M, int64_t K);
void sgemm_avx2_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, int64_t part, int64_t parts,
                       float* dst);
void sgemm_avx512_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, int64_t part, int64_t parts,
                         float* dst);
void sgemm_avx2_prepacked(const SgemmConfig& cfg, int64_t M, int64_t N, int64_t K, const float* apack, const float* B,
                          int64_t ldb, const SgemmImage* img, float* C, int64_t ldc);
void sgemm_avx512_prepacked(const SgemmConfig& cfg, int64_t M, int64_t N, int64_t K, const float* apack,
                            const float* B, int64_t ldb, const SgemmImage* img, float* C, int64_t ldc);
// The selected kernel's: the floats its packed A needs (0 when the selected kernel is the
// reference, which has no packed form), its packing, and its product with the default config.
int64_t sgemm_packed_a_floats(int64_t M, int64_t K);
void sgemm_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, int64_t part, int64_t parts,
                  float* dst);
void sgemm_prepacked(int64_t M, int64_t N, int64_t K, const float* apack, const float* B, int64_t ldb,
                     const SgemmImage* img, float* C, int64_t ldc);

// Which kernel gemm<float> runs.
enum class SgemmIsa { reference, avx2, avx512 };
const char* sgemm_isa_name(SgemmIsa isa);  // "reference", "avx2", "avx512"

// The kernel for a value of the environment variable MINIDL_GEMM (nullptr or "": unset):
// unset picks the fastest this CPU supports (avx512, else avx2, else reference);
// "avx512" / "avx2" / "reference" force one. Throws minidl::Error naming the variable and
// the allowed values for anything else, and for an ISA this CPU (or OS) lacks.
SgemmIsa sgemm_isa_for(const char* minidl_gemm);
// The kernel gemm<float> runs: sgemm_isa_for(getenv("MINIDL_GEMM")), read on the first call
// (gemm_isa() in gemm.h is its name).
SgemmIsa sgemm_selected();

}  // namespace minidl::cpu
