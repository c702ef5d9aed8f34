// The fast SGEMMs (kernels/cpu/gemm_avx2.cpp and gemm_avx512.cpp, one shared driver)
// against gemm_reference on awkward shapes: every transpose, alpha/beta not 0 or 1, beta = 0
// over a C full of NaN, leading dimensions wider than the rows, sizes around every block
// and tile edge (6 x 16 tiles for AVX2, 8 x 32 for AVX-512, KC = 256, MC = 144 rows and
// NG = 256 columns per work item, the dot kernel's 8 columns and its 4096-long K blocks),
// each path the dispatcher can take (packed, swapped, dot, packed A), 1 and 2 threads and
// inside an outer parallel region, which must all give the same bits. The implicit conv
// GEMM (op(B) packed from images) against the same product over the materialised im2col. Every test runs each
// kernel this CPU supports and says which it skips. Then the routing: MINIDL_GEMM's values
// and errors, and gemm<float> running the selected kernel.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_fast.h"
#include "tensor/error.h"
#include "tensor/parallel.h"
#include "tensor/random.h"
#include "test_util.h"

using namespace minidl;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// One fast kernel: its name, whether this CPU can run it, its entry point.
using SgemmFn = void (*)(const cpu::SgemmConfig&, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                         const float*, int64_t, float, float*, int64_t);
using ImageFn = void (*)(const cpu::SgemmConfig&, int64_t, int64_t, int64_t, float, const float*, int64_t,
                         const cpu::SgemmImage&, float, float*, int64_t);
using PackedFloatsFn = int64_t (*)(int64_t, int64_t);
using PackAFn = void (*)(bool, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, float*);
using PrepackedFn = void (*)(const cpu::SgemmConfig&, int64_t, int64_t, int64_t, const float*, const float*, int64_t,
                             const cpu::SgemmImage*, float*, int64_t);
struct Kernel {
  std::string name;
  bool (*available)();
  SgemmFn run;
  ImageFn image;  // the implicit conv GEMM (op(B) packed from an image)
  PackedFloatsFn packed_a_floats;  // A packed in advance, and the product that reads it
  PackAFn pack_a;
  PrepackedFn prepacked;
};
const Kernel kKernels[] = {{"avx2", cpu::cpu_has_avx2_fma, cpu::sgemm_avx2_config, cpu::sgemm_avx2_image,
                            cpu::sgemm_avx2_packed_a_floats, cpu::sgemm_avx2_pack_a, cpu::sgemm_avx2_prepacked},
                           {"avx512", cpu::cpu_has_avx512, cpu::sgemm_avx512_config, cpu::sgemm_avx512_image,
                            cpu::sgemm_avx512_packed_a_floats, cpu::sgemm_avx512_pack_a, cpu::sgemm_avx512_prepacked}};

// body(kernel) for every kernel this CPU supports; a skip message for each other one.
template <class Body>
void for_each_kernel(Body body) {
  for (const Kernel& k : kKernels) {
    if (!k.available()) {
      MESSAGE("this CPU has no ", k.name, ": skipping its SGEMM here");
      continue;
    }
    CAPTURE(k.name);
    body(k);
  }
}

// One GEMM problem with padded leading dimensions and a sentinel past column N of C.
struct Case {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C0;
  static constexpr float kSentinel = 12345.5f;

  Case(bool ta_, bool tb_, int64_t M_, int64_t N_, int64_t K_, float alpha_, float beta_, uint64_t seed)
      : ta(ta_), tb(tb_), M(M_), N(N_), K(K_), alpha(alpha_), beta(beta_) {
    lda = (ta ? M : K) + 3;
    ldb = (tb ? K : N) + 5;
    ldc = N + 2;
    A = testing::random_values<float>(size_t((ta ? K : M) * lda), seed);
    B = testing::random_values<float>(size_t((tb ? N : K) * ldb), seed + 1);
    C0 = testing::random_values<float>(size_t(M * ldc), seed + 2);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        float& c = C0[size_t(i * ldc + j)];
        if (j >= N) c = kSentinel;
        else if (beta == 0.f) c = std::numeric_limits<float>::quiet_NaN();  // must be overwritten, not read
      }
  }

  std::vector<float> run_fast(const Kernel& k, const cpu::SgemmConfig& cfg = {}) const {
    std::vector<float> C = C0;
    k.run(cfg, ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    return C;
  }
  std::vector<float> run_reference() const {
    std::vector<float> C = C0;
    cpu::gemm_reference<float>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
    return C;
  }
  double a(int64_t i, int64_t p) const { return A[size_t(ta ? p * lda + i : i * lda + p)]; }
  double b(int64_t p, int64_t j) const { return B[size_t(tb ? j * ldb + p : p * ldb + j)]; }

  // max over elements of |got - ref| / (|alpha| sum_k |a b| + |beta c|): the error relative to
  // the size of what was summed (a bound that does not blow up where terms cancel).
  // Returns infinity when a sentinel past column N changed or a NaN appears.
  double error(const std::vector<float>& got, const std::vector<float>& ref) const {
    double worst = 0;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = N; j < ldc; ++j)
        if (got[size_t(i * ldc + j)] != kSentinel) return std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < N; ++j) {
        double mag = 0;
        for (int64_t p = 0; p < K; ++p) mag += std::abs(a(i, p) * b(p, j));
        mag = std::abs(double(alpha)) * mag + (beta == 0.f ? 0.0 : std::abs(double(beta) * C0[size_t(i * ldc + j)]));
        const double e = std::abs(double(got[size_t(i * ldc + j)]) - ref[size_t(i * ldc + j)]) / (mag + 1e-30);
        if (!(e <= worst)) worst = e;  // NaN counts as the worst
      }
    }
    return worst;
  }
};

// Tolerance for error(). Summing K products in float rounds each partial sum s_k with a
// relative error of at most eps/2 (eps = 2^-23 ~ 1.19e-7); the roundings are independent,
// roughly uniform, so the total has a standard deviation of about
// eps / (2 sqrt 3) * sqrt(sum_k s_k^2) <= eps / (2 sqrt 3) * sqrt(K) * (sum_k |a b|), the
// last step being the worst case where all terms have one sign (the guaranteed bound,
// K * eps, needs adversarial data). sqrt(K + 4) * eps is 3.5 of those standard
// deviations (the + 4 covers the roundings of alpha, beta and adding K blocks into C); on
// random signs the observed errors are 20-50x below it. It still catches a single missing
// or wrong term, which costs ~ 1/K of sum |a b|, for any K below ~40000.
double tolerance(int64_t K) { return std::sqrt(double(K) + 4.0) * std::numeric_limits<float>::epsilon(); }

void check_case(const Kernel& k, const Case& c, const cpu::SgemmConfig& cfg = {}) {
  CAPTURE(k.name);
  CAPTURE(c.ta);
  CAPTURE(c.tb);
  CAPTURE(c.M);
  CAPTURE(c.N);
  CAPTURE(c.K);
  CAPTURE(c.alpha);
  CAPTURE(c.beta);
  CAPTURE(cfg.allow_dot);
  CAPTURE(cfg.allow_swap);
  CAPTURE(cfg.in_place);
  CAPTURE(cfg.share_b);
  std::vector<float> one, two;
  {
    ThreadCountGuard t(1);
    one = c.run_fast(k, cfg);
  }
  {
    ThreadCountGuard t(2);
    two = c.run_fast(k, cfg);
  }
  CHECK(same_bits(one, two));  // the thread count must not change a bit
  const double err = c.error(one, c.run_reference());
  CAPTURE(err);
  CHECK(err <= tolerance(c.K));
}

struct GemmShape {
  int64_t M, N, K;
};

// Edges of everything: 1s, primes, tile sizes +-1 (AVX2: 6 rows, 8 and 16 columns;
// AVX-512: 8 rows, 16 and 32 columns), the dot kernel's limit (8), the limits for swapping
// (N < 8 or 16, or <= 18 or 24 with A^T) and for reading B in place (<= 18 or 24 rows), K
// around the block size (256; 257 splits into 2 x 129) and the 8- or 16-wide vector along
// K in the dot kernel.
const GemmShape kShapes[] = {
    {1, 1, 1},      {1, 37, 1},    {37, 1, 1},    {7, 13, 5},    {33, 17, 65},  {5, 9, 3},      {6, 16, 8},
    {7, 17, 9},     {12, 15, 31},  {13, 31, 257}, {11, 33, 256}, {2, 40, 19},   {40, 2, 19},    {50, 8, 23},
    {50, 9, 23},    {8, 50, 23},   {9, 50, 23},   {23, 4, 300},  {4, 23, 300},  {64, 7, 129},   {40, 17, 33},
    {100, 18, 50},  {97, 131, 259}, {12, 32, 16}, {13, 33, 17},  {11, 31, 33},  {25, 47, 97},   {24, 64, 257},
    {1, 97, 31},    {97, 1, 33},   {5, 17, 1},    {50, 24, 19},  {40, 25, 21},  {31, 5, 17},    {17, 97, 5}};

}  // namespace

TEST_CASE("fast sgemm matches gemm_reference: all transposes, alpha/beta, NaN under beta = 0, padded strides") {
  for_each_kernel([](const Kernel& k) {
    uint64_t seed = 7000;
    for (const GemmShape& s : kShapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          check_case(k, Case(ta, tb, s.M, s.N, s.K, 0.75f, -1.25f, seed += 3));
          check_case(k, Case(ta, tb, s.M, s.N, s.K, 1.f, 0.f, seed += 3));
          check_case(k, Case(ta, tb, s.M, s.N, s.K, -2.f, 1.f, seed += 3));
        }
  });
}

TEST_CASE("fast sgemm: every path the dispatcher can take gives the same product") {
  // Switching paths off forces the general packed kernel on shapes meant for the dot
  // kernel or the swapped product, and packs op(A) where it is normally read in place.
  const GemmShape shapes[] = {{23, 4, 300}, {4, 23, 300}, {50, 9, 23},  {7, 13, 5},
                              {33, 17, 65}, {40, 18, 21}, {50, 25, 19}, {45, 24, 33}};
  for_each_kernel([&](const Kernel& k) {
    uint64_t seed = 8000;
    for (bool dot : {false, true})
      for (bool swap : {false, true})
        for (bool direct : {false, true})
          for (const GemmShape& s : shapes)
            for (bool ta : {false, true})
              for (bool tb : {false, true}) {
                cpu::SgemmConfig cfg;
                cfg.allow_dot = dot;
                cfg.allow_swap = swap;
                cfg.in_place = direct;
                check_case(k, Case(ta, tb, s.M, s.N, s.K, 0.5f, 1.5f, seed += 3), cfg);
              }
  });
}

TEST_CASE("fast sgemm: blocks larger than one panel, and sizes big enough to run on two threads") {
  // N over many column blocks (NG = 256), M past one row block (MC = 144), K past two K
  // blocks, K past the dot kernel's K block (4096, when B must be packed); then products
  // above the parallel threshold, cut into items along N, along M, in the dot kernel and
  // in the swapped product.
  const GemmShape shapes[] = {{7, 3100, 3},   {150, 20, 10},  {5, 21, 600},   {45, 600, 100},
                              {9, 5, 4100},   {100, 5, 4500}, {210, 20, 600}, {3000, 4, 200},
                              {4, 3000, 200}, {300, 12, 700}, {3000, 16, 100}, {289, 40, 300}};
  for_each_kernel([&](const Kernel& k) {
    uint64_t seed = 9000;
    for (const GemmShape& s : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) check_case(k, Case(ta, tb, s.M, s.N, s.K, -0.5f, 0.25f, seed += 3));
  });
}

TEST_CASE("fast sgemm: op(B) packed once for a team (share_b) gives the bits of packing it per item") {
  // On two threads, products tall enough that the work items split the rows (so that
  // several items read the same columns of B) take the shared packing: one column group or
  // several (N over NG = 256), K in one block or several, B stored either way, rows that
  // end mid-tile. Compared with share_b off (each item packs its own B) and with 1 thread.
  const GemmShape shapes[] = {{300, 40, 600}, {515, 130, 300}, {290, 600, 257}, {150, 33, 1000}, {1000, 70, 45}};
  for_each_kernel([&](const Kernel& k) {
    uint64_t seed = 9500;
    cpu::SgemmConfig per_item;
    per_item.share_b = false;
    for (const GemmShape& s : shapes)
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          const Case c(ta, tb, s.M, s.N, s.K, 0.5f, -0.75f, seed += 3);
          check_case(k, c);
          ThreadCountGuard t(2);
          CHECK(same_bits(c.run_fast(k), c.run_fast(k, per_item)));
        }
  });
}

TEST_CASE("fast sgemm inside an outer parallel region runs serially and gives the same bits") {
  // conv calls gemm from inside its parallel-over-samples region: no nested team, and the
  // result of each call equal to the same call made alone.
  const Case cases[] = {Case(false, false, 64, 256, 147, 1.f, 0.f, 1), Case(true, false, 300, 16, 64, 1.f, 0.f, 2),
                        Case(false, true, 64, 147, 256, 1.f, 1.f, 3), Case(false, false, 512, 4, 700, 1.f, 0.f, 4)};
  constexpr int kCases = 4;
  for_each_kernel([&](const Kernel& k) {
    std::vector<float> alone[kCases], nested[kCases];
    {
      ThreadCountGuard t(2);
      for (int i = 0; i < kCases; ++i) alone[i] = cases[i].run_fast(k);
    }
    int team = 0;
    {
      ThreadCountGuard t(2);
#pragma omp parallel num_threads(2)
      {
#pragma omp single
        team = omp_get_num_threads();
#pragma omp for schedule(static)
        for (int i = 0; i < kCases; ++i) nested[i] = cases[i].run_fast(k);
      }
    }
    MESSAGE(k.name, ": outer team of ", team, " threads");
    for (int i = 0; i < kCases; ++i) {
      CAPTURE(i);
      CHECK(same_bits(alone[i], nested[i]));
      CHECK(cases[i].error(nested[i], cases[i].run_reference()) <= tolerance(cases[i].K));
    }
  });
}

TEST_CASE("fast sgemm on ResNet-sized products: error vs the double-accumulating reference") {
  // The shapes of a 3x3 conv in layer1 and layer4 of ResNet50 (K = C*3*3 up to 4608), run
  // twice: the same bits each time (no run-to-run variation).
  const GemmShape shapes[] = {{64, 256, 576}, {256, 16, 2304}, {512, 4, 4608}};
  for_each_kernel([&](const Kernel& k) {
    uint64_t seed = 10000;
    for (const GemmShape& s : shapes) {
      const Case c(false, false, s.M, s.N, s.K, 1.f, 0.f, seed += 3);
      const std::vector<float> first = c.run_fast(k), again = c.run_fast(k);
      CHECK(same_bits(first, again));
      const double err = c.error(first, c.run_reference());
      MESSAGE(k.name, " ", s.M, "x", s.N, "x", s.K, ": max error ", err, " of sum |a*b| (tolerance ", tolerance(s.K),
              ")");
      CHECK(err <= tolerance(s.K));
    }
  });
}

TEST_CASE("avx512 and avx2 give the same bits off the dot kernel") {
  // A design property (gemm_avx512.cpp, block sizes): both kernels block K the same way and
  // accumulate each element of C in one lane along k, so whatever their tile shapes, swaps
  // and edge paths, the packed path sums every element in the same order. Only the dot
  // kernel (switched off here) sums along k in 8 or 16 lanes. Retuning KC for one ISA
  // alone would end this, and the test says so.
  if (!cpu::cpu_has_avx512()) {
    MESSAGE("this CPU has no avx512: nothing to compare");
    return;
  }
  cpu::SgemmConfig no_dot;
  no_dot.allow_dot = false;
  uint64_t seed = 11000;
  for (const GemmShape& s : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const Case c(ta, tb, s.M, s.N, s.K, 0.75f, -1.25f, seed += 3);
        CAPTURE(c.M);
        CAPTURE(c.N);
        CAPTURE(c.K);
        CAPTURE(ta);
        CAPTURE(tb);
        CHECK(same_bits(c.run_fast(kKernels[0], no_dot), c.run_fast(kKernels[1], no_dot)));
      }
}

TEST_CASE("MINIDL_GEMM: the allowed values, and clear errors for the others") {
  using cpu::SgemmIsa;
  const SgemmIsa best = cpu::cpu_has_avx512()     ? SgemmIsa::avx512
                        : cpu::cpu_has_avx2_fma() ? SgemmIsa::avx2
                                                  : SgemmIsa::reference;
  CHECK(cpu::sgemm_isa_for(nullptr) == best);
  CHECK(cpu::sgemm_isa_for("") == best);
  CHECK(cpu::sgemm_isa_for("reference") == SgemmIsa::reference);
  // An ISA this CPU has is granted; one it lacks is an error that says so.
  const std::pair<const char*, bool> isas[] = {{"avx2", cpu::cpu_has_avx2_fma()}, {"avx512", cpu::cpu_has_avx512()}};
  for (const auto& [name, have] : isas) {
    const std::string isa_name = name;
    CAPTURE(isa_name);
    if (have) {
      CHECK(std::string(cpu::sgemm_isa_name(cpu::sgemm_isa_for(name))) == name);
    } else {
      MESSAGE("this CPU has no ", isa_name, ": MINIDL_GEMM=", isa_name, " must be refused");
      CHECK_THROWS_WITH_AS(cpu::sgemm_isa_for(name), doctest::Contains("MINIDL_GEMM"), Error);
    }
  }
  // Anything else names the variable and every allowed value.
  for (const char* bad : {"AVX2", "avx", "fast", "avx512 "}) {
    const std::string value = bad;
    CAPTURE(value);
    try {
      cpu::sgemm_isa_for(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK(what.find("MINIDL_GEMM") != std::string::npos);
      CHECK(what.find(bad) != std::string::npos);
      CHECK(what.find("avx512, avx2, reference") != std::string::npos);
    }
  }
}

TEST_CASE("gemm<float> runs the selected kernel, and gemm_isa() names it") {
  // Same bits as the selected kernel's entry point: which one ran. Without MINIDL_GEMM in
  // the environment that is the fastest this CPU supports.
  const std::string isa = cpu::gemm_isa();
  const std::string env = std::getenv("MINIDL_GEMM") ? std::getenv("MINIDL_GEMM") : "(unset)";
  MESSAGE("gemm<float> uses ", isa, " (MINIDL_GEMM=", env, ")");
  CHECK(isa == cpu::sgemm_isa_name(cpu::sgemm_isa_for(std::getenv("MINIDL_GEMM"))));
  for (const GemmShape& s : {GemmShape{33, 17, 65}, GemmShape{3, 50, 40}, GemmShape{70, 90, 300}}) {
    const Case c(false, true, s.M, s.N, s.K, 1.f, 0.f, 42);
    std::vector<float> C = c.C0;
    cpu::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, c.alpha, c.A.data(), c.lda, c.B.data(), c.ldb, c.beta, C.data(),
                     c.ldc);
    if (isa == "reference") {
      CHECK(same_bits(C, c.run_reference()));
    } else {
      const Kernel& k = kKernels[isa == "avx2" ? 0 : 1];
      CHECK(same_bits(C, c.run_fast(k)));
    }
  }
}

namespace {

// An implicit-GEMM problem: `samples` images (each followed by a gap, so the sample stride
// is not C*H*W), weights A [M, K] (lda padded), C [M, N] with a sentinel column, and the
// same op(B) materialised with im2col (samples side by side, [K, N]) for the dense call.
struct ImageCase {
  cpu::ConvGeom g;
  cpu::SgemmImage img;
  int64_t M, N, K, lda, ldc;
  std::vector<float> x, cols;
  Case dense;  // the same product with B = cols

  ImageCase(const cpu::ConvGeom& g_, int64_t M_, float alpha, float beta, uint64_t seed)
      : g(g_), M(M_), N(g_.N * g_.col_cols()), K(g_.col_rows()), dense(false, false, M_, N, K, alpha, beta, seed) {
    const int64_t chw = g.C * g.H * g.W, stride = chw + 7, P = g.col_cols();
    x = testing::random_values<float>(size_t(g.N * stride), seed + 5);
    img = cpu::SgemmImage{x.data(), g.N, stride, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW};
    // dense.B [K, ldb] <- the samples' im2col side by side (ldb = N + 5 keeps its padding).
    std::vector<float> one(size_t(K * P));
    for (int64_t s = 0; s < g.N; ++s) {
      cpu::im2col_reference<float>(g, x.data() + s * stride, one.data());
      for (int64_t k = 0; k < K; ++k)
        for (int64_t i = 0; i < P; ++i) dense.B[size_t(k * dense.ldb + s * P + i)] = one[size_t(k * P + i)];
    }
  }
  std::vector<float> run_image(const Kernel& k, const cpu::SgemmConfig& cfg = {}) const {
    std::vector<float> C = dense.C0;
    k.image(cfg, M, N, K, dense.alpha, dense.A.data(), dense.lda, img, dense.beta, C.data(), dense.ldc);
    return C;
  }
};

}  // namespace

TEST_CASE("implicit conv GEMM: op(B) packed from images equals the product over the materialised im2col") {
  // Geometries around the packing's edges: odd C, H, W; strides 1 and 2 (and 3); padding 0,
  // 1, 3 (wider than some kernels' reach); 1x1 with stride; several samples whose columns
  // straddle slivers and work items (N > NG = 256 for two items); K over two K blocks
  // (C*KH*KW > 256); output rows shorter and longer than a sliver.
  const cpu::ConvGeom geoms[] = {
      cpu::make_conv_geom(1, 3, 9, 7, 1, 3, 3, 1, 1, 1, 1),     // P = 63, one sample
      cpu::make_conv_geom(3, 5, 7, 11, 1, 3, 3, 2, 2, 1, 1),    // stride 2, P = 24 per sample
      cpu::make_conv_geom(2, 37, 6, 5, 1, 3, 3, 1, 1, 1, 1),    // K = 333: two K blocks
      cpu::make_conv_geom(2, 3, 19, 21, 1, 7, 7, 2, 2, 3, 3),   // the stem's 7x7/2 pad 3, N = 220
      cpu::make_conv_geom(5, 7, 8, 9, 1, 3, 3, 1, 1, 0, 0),     // no padding, N = 210
      cpu::make_conv_geom(3, 4, 5, 4, 1, 3, 5, 3, 2, 3, 1),     // padding wider than the input
      cpu::make_conv_geom(9, 6, 9, 7, 1, 1, 1, 2, 2, 0, 0),     // 1x1/2 downsample, N = 180
      cpu::make_conv_geom(7, 9, 13, 12, 1, 3, 3, 1, 1, 1, 1),   // N = 1092: five items
      cpu::make_conv_geom(4, 2, 2, 2, 1, 3, 3, 1, 1, 1, 1),     // P = 4: a sliver spans samples
      cpu::make_conv_geom(1, 2, 3, 3, 1, 3, 3, 1, 1, 1, 1),     // N = 9 < 16: correct, not same bits
      // Stride 1, OW == W, OH*OW a multiple of the vector width: the one-load-per-vector path.
      cpu::make_conv_geom(3, 5, 4, 4, 1, 3, 3, 1, 1, 1, 1),     // P = 16: 2 samples per 32-wide sliver
      cpu::make_conv_geom(2, 37, 8, 8, 1, 3, 3, 1, 1, 1, 1),    // P = 64, K = 333: two K blocks
      cpu::make_conv_geom(3, 4, 6, 8, 1, 3, 3, 1, 1, 0, 1),     // pad 0 down the height: OH = 4, P = 32
      cpu::make_conv_geom(5, 3, 4, 8, 1, 5, 5, 1, 1, 2, 2),     // 5x5 pad 2, P = 32
      cpu::make_conv_geom(9, 3, 4, 4, 1, 3, 3, 1, 1, 1, 1),     // N = 144, and a partial last sliver
      cpu::make_conv_geom(2, 3, 16, 16, 1, 3, 3, 1, 1, 1, 1),   // P = 256: N over one item
  };
  for_each_kernel([&](const Kernel& k) {
    uint64_t seed = 700;
    for (const cpu::ConvGeom& g : geoms)
      for (int64_t M : {5, 17, 150})
        for (float beta : {0.f, 0.5f}) {
          CAPTURE(g.N);
          CAPTURE(g.C);
          CAPTURE(g.H);
          CAPTURE(g.W);
          CAPTURE(g.KH);
          CAPTURE(g.SH);
          CAPTURE(g.PH);
          CAPTURE(M);
          CAPTURE(beta);
          const ImageCase c(g, M, 0.75f, beta, seed += 10);
          std::vector<float> one, two;
          {
            ThreadCountGuard t(1);
            one = c.run_image(k);
          }
          {
            ThreadCountGuard t(2);
            two = c.run_image(k);
          }
          CHECK(same_bits(one, two));
          {
            ThreadCountGuard t(2);  // B packed per item instead of once for the team
            cpu::SgemmConfig per_item;
            per_item.share_b = false;
            CHECK(same_bits(one, c.run_image(k, per_item)));
          }
          CHECK(c.dense.error(one, c.dense.run_reference()) <= tolerance(c.K));
          if (c.N >= 16) CHECK(same_bits(one, c.dense.run_fast(k)));  // the dense call packs the same panels
        }
  });
}

namespace {

// op(A) [M, K] (A's row stride lda) packed by `parts` parts, run in reverse order (each
// fills only its own panels), into a buffer of exactly packed_a_floats floats.
std::vector<float> pack_whole_a(const Kernel& k, bool ta, int64_t M, int64_t K, const float* A, int64_t lda,
                                int64_t parts) {
  std::vector<float> buf(size_t(k.packed_a_floats(M, K)), std::numeric_limits<float>::quiet_NaN());
  for (int64_t part = parts - 1; part >= 0; --part) k.pack_a(ta, M, K, A, lda, part, parts, buf.data());
  return buf;
}

}  // namespace

TEST_CASE("A packed in advance: the product gives the dense call's bits, whatever the split of the packing") {
  // M around the tiles (6, 8), the 144-row blocks and with fewer panels than parts; K across
  // K blocks (256) and not a multiple of them; N where the dense call takes the packed kernel
  // unswapped (A: >= 16; A^T, conv's backward data: >= 25) around the slivers and work items
  // (256 columns).
  for_each_kernel([&](const Kernel& k) {
    uint64_t seed = 900;
    for (bool ta : {false, true})
    for (int64_t M : {1, 5, 8, 9, 17, 150, 300})
      for (int64_t K : {1, 7, 256, 333, 600})
        for (int64_t N : {16, 17, 25, 40, 300}) {
          if (ta && N < 25) continue;
          CAPTURE(ta);
          CAPTURE(M);
          CAPTURE(K);
          CAPTURE(N);
          const Case c(ta, false, M, N, K, 1.f, 0.f, seed += 3);
          const std::vector<float> want = c.run_fast(k);
          for (int64_t parts : {1, 3, 8}) {
            CAPTURE(parts);
            const std::vector<float> ap = pack_whole_a(k, ta, M, K, c.A.data(), c.lda, parts);
            for (int threads : {1, 2}) {
              ThreadCountGuard t(threads);
              std::vector<float> got = c.C0;
              k.prepacked({}, M, N, K, ap.data(), c.B.data(), c.ldb, nullptr, got.data(), c.ldc);
              CHECK(same_bits(got, want));
            }
          }
        }
  });
}

TEST_CASE("A packed in advance with op(B) from images gives the implicit GEMM's bits") {
  const cpu::ConvGeom geoms[] = {
      cpu::make_conv_geom(2, 37, 6, 5, 1, 3, 3, 1, 1, 1, 1),    // K = 333: two K blocks
      cpu::make_conv_geom(3, 5, 7, 11, 1, 3, 3, 2, 2, 1, 1),    // stride 2, P = 24 per sample
      cpu::make_conv_geom(7, 9, 13, 12, 1, 3, 3, 1, 1, 1, 1),   // N = 1092: five items
  };
  for_each_kernel([&](const Kernel& k) {
    uint64_t seed = 1300;
    for (const cpu::ConvGeom& g : geoms)
      for (int64_t M : {5, 17, 150}) {
        CAPTURE(g.N);
        CAPTURE(g.C);
        CAPTURE(M);
        const ImageCase c(g, M, 1.f, 0.f, seed += 10);
        const std::vector<float> ap = pack_whole_a(k, false, M, c.K, c.dense.A.data(), c.dense.lda, 3);
        for (int threads : {1, 2}) {
          ThreadCountGuard t(threads);
          std::vector<float> got = c.dense.C0;
          k.prepacked({}, M, c.N, c.K, ap.data(), nullptr, 0, &c.img, got.data(), c.dense.ldc);
          CHECK(same_bits(got, c.run_image(k)));
        }
      }
  });
}
