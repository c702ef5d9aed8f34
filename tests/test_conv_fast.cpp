// The fast convolution (kernels/cpu/conv2d.cpp, conv2d_lowering.cpp) against its references:
// conv2d_forward / backward_input / backward_weight under each lowering (per-sample, batched
// with chunks that leave a remainder, and plan_conv's own choice) against the nested-loop
// conv2d_reference_*, in float and double, on random awkward shapes (kernels 1-7, strides
// 1-3, padding 0-3, H != W, odd channel counts, N = 1, 3, 33), at 1 and 2 threads, with
// bit-identical results across thread counts; the implicit-GEMM forward (no im2col buffer)
// against the reference and bit for bit against the column-matrix forward; the fast im2col /
// col2im against the per-element versions; and the workspace bound of plan_conv.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "tensor/error.h"
#include "tensor/parallel.h"
#include "tensor/random.h"
#include "test_util.h"

using namespace minidl;
using cpu::ConvGeom;
using cpu::ConvLowering;
using cpu::ConvPass;
using cpu::ConvPlan;

namespace {

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

std::string describe(const ConvGeom& g) {
  return detail::concat("N=", g.N, " C=", g.C, " H=", g.H, " W=", g.W, " O=", g.O, " k=", g.KH, "x", g.KW,
                        " s=", g.SH, ",", g.SW, " p=", g.PH, ",", g.PW, " -> ", g.OH, "x", g.OW);
}

// max |got - ref| / max |ref|: rounding error relative to the result's scale (NaN fails).
template <class T>
double scaled_error(const std::vector<T>& got, const std::vector<T>& ref) {
  REQUIRE(got.size() == ref.size());
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(double(got[i]) - double(ref[i]));
    if (!(d <= diff)) diff = d;
    scale = std::max(scale, std::abs(double(ref[i])));
  }
  return diff / scale;
}

template <class T>
double tolerance() {
  return sizeof(T) == 4 ? 2e-5 : 1e-12;
}

// A random geometry: kernel 1, 3, 5 or 7 (KH and KW drawn apart), stride 1-3, padding 0-3,
// H != W in general, channel counts that are multiples of nothing in particular.
ConvGeom random_geom(Generator& r, int64_t N) {
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(r.uniform() * double(hi - lo + 1)); };
  const int64_t ks[] = {1, 3, 5, 7};
  const int64_t KH = ks[pick(0, 3)], KW = ks[pick(0, 3)];
  const int64_t PH = pick(0, 3), PW = pick(0, 3);
  // Inputs at least as large as the kernel minus the padding, so the output is not empty.
  const int64_t H = std::max<int64_t>(pick(3, 14), KH - 2 * PH), W = std::max<int64_t>(pick(3, 14), KW - 2 * PW);
  return cpu::make_conv_geom(N, pick(1, 7), H, W, pick(1, 11), KH, KW, pick(1, 3), pick(1, 3), PH, PW);
}

// Everything one call of the three passes produces.
template <class T>
struct ConvOut {
  std::vector<T> y, dx, dw, db;
};

template <class T>
struct ConvData {
  ConvGeom g;
  std::vector<T> x, w, b, dy;
  ConvData(const ConvGeom& geom, uint64_t seed)
      : g(geom),
        x(testing::random_values<T>(g.N * g.C * g.H * g.W, seed)),
        w(testing::random_values<T>(g.O * g.col_rows(), seed + 1)),
        b(testing::random_values<T>(g.O, seed + 2)),
        dy(testing::random_values<T>(g.N * g.O * g.col_cols(), seed + 3)) {}

  // Outputs start as NaN: every kernel must overwrite, never accumulate into, its output.
  ConvOut<T> nan_outputs() const {
    const T nan = std::numeric_limits<T>::quiet_NaN();
    return {std::vector<T>(dy.size(), nan), std::vector<T>(x.size(), nan), std::vector<T>(w.size(), nan),
            std::vector<T>(b.size(), nan)};
  }
  ConvOut<T> reference() const {
    ConvOut<T> o = nan_outputs();
    cpu::conv2d_reference_forward<T>(g, x.data(), w.data(), b.data(), o.y.data());
    cpu::conv2d_reference_backward_input<T>(g, dy.data(), w.data(), o.dx.data());
    cpu::conv2d_reference_backward_weight<T>(g, dy.data(), x.data(), o.dw.data(), o.db.data());
    return o;
  }
  // Under a given plan, or (plan == nullptr) through the public functions' own plans.
  ConvOut<T> fast(const ConvPlan* plan = nullptr) const {
    ConvOut<T> o = nan_outputs();
    if (plan) {
      cpu::conv2d_forward_planned<T>(g, *plan, x.data(), w.data(), b.data(), o.y.data());
      cpu::conv2d_backward_input_planned<T>(g, *plan, dy.data(), w.data(), o.dx.data());
      cpu::conv2d_backward_weight_planned<T>(g, *plan, dy.data(), x.data(), o.dw.data(), o.db.data());
    } else {
      cpu::conv2d_forward<T>(g, x.data(), w.data(), b.data(), o.y.data());
      cpu::conv2d_backward_input<T>(g, dy.data(), w.data(), o.dx.data());
      cpu::conv2d_backward_weight<T>(g, dy.data(), x.data(), o.dw.data(), o.db.data());
    }
    return o;
  }
};

template <class T>
void check_close(const ConvOut<T>& got, const ConvOut<T>& ref) {
  CHECK(scaled_error(got.y, ref.y) <= tolerance<T>());
  CHECK(scaled_error(got.dx, ref.dx) <= tolerance<T>());
  CHECK(scaled_error(got.dw, ref.dw) <= tolerance<T>());
  CHECK(scaled_error(got.db, ref.db) <= tolerance<T>());
}

template <class T>
void check_same_bits(const ConvOut<T>& a, const ConvOut<T>& b) {
  CHECK(same_bits(a.y, b.y));
  CHECK(same_bits(a.dx, b.dx));
  CHECK(same_bits(a.dw, b.dw));
  CHECK(same_bits(a.db, b.db));
}

// The plans a shape is tested under: both lowerings, batched chunks of plan_conv's size and
// of sizes that leave a remainder (2 and 5 samples), each with the forward's column matrix
// and as an implicit GEMM (the flag is ignored for double and by the backward passes);
// plan_conv's own plan is tested through the public functions.
std::vector<ConvPlan> plans_for(const ConvGeom& g) {
  std::vector<ConvPlan> plans;
  for (bool implicit : {false, true})
    for (ConvPlan p : {ConvPlan{ConvLowering::PerSample, 1}, ConvPlan{ConvLowering::Batched, cpu::conv_chunk(g, 4)},
                       ConvPlan{ConvLowering::Batched, 2}, ConvPlan{ConvLowering::Batched, 5}}) {
      p.implicit = implicit;
      plans.push_back(p);
    }
  return plans;
}

template <class T>
void check_against_reference(const ConvGeom& g, uint64_t seed) {
  const ConvData<T> d(g, seed);
  const ConvOut<T> ref = d.reference();
  for (const ConvPlan& plan : plans_for(g)) {
    CAPTURE(int(plan.lowering));
    CAPTURE(plan.chunk);
    CAPTURE(plan.implicit);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      ThreadCountGuard tc(threads);
      check_close(d.fast(&plan), ref);
    }
  }
  ThreadCountGuard tc(2);
  check_close(d.fast(), ref);
}

}  // namespace

TEST_CASE("fast conv2d matches the reference on random awkward shapes, every lowering, 1 and 2 threads") {
  Generator r(20240905);
  for (int64_t N : {1, 3, 33}) {
    const int count = N == 33 ? 6 : 12;  // the nested-loop reference is slow at N = 33
    for (int i = 0; i < count; ++i) {
      const ConvGeom g = random_geom(r, N);
      CAPTURE(describe(g));
      check_against_reference<float>(g, 100 + i);
      check_against_reference<double>(g, 200 + i);
    }
  }
}

TEST_CASE("fast conv2d matches the reference on the ResNet special cases") {
  const ConvGeom cases[] = {
      cpu::make_conv_geom(3, 3, 19, 21, 5, 7, 7, 2, 2, 3, 3),  // the stem, 7x7/2 padded by 3
      cpu::make_conv_geom(3, 6, 9, 7, 11, 1, 1, 2, 2, 0, 0),   // downsample 1x1/2, odd sizes
      cpu::make_conv_geom(33, 5, 3, 5, 7, 1, 1, 1, 1, 0, 0),   // pointwise, tiny P, chunk remainder
      cpu::make_conv_geom(3, 4, 17, 16, 6, 1, 1, 1, 1, 0, 0),  // pointwise, P >= 256: x read in place
      cpu::make_conv_geom(3, 5, 17, 18, 7, 3, 3, 1, 1, 1, 1),  // 3x3 "same", P >= 256
      cpu::make_conv_geom(2, 3, 5, 4, 4, 3, 3, 3, 3, 3, 3),    // padding wider than the input
      cpu::make_conv_geom(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0),    // everything 1
  };
  for (const ConvGeom& g : cases) {
    CAPTURE(describe(g));
    check_against_reference<float>(g, 300);
    check_against_reference<double>(g, 400);
  }
}

TEST_CASE("plan_conv picks the lowering from OH*OW and the chunk's size") {
  auto lowering = [](const ConvGeom& g, ConvPass pass) { return cpu::plan_conv(g, pass, 4).lowering; };
  const ConvGeom p4 = cpu::make_conv_geom(32, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1);      // rn50 l4 3x3
  const ConvGeom p16 = cpu::make_conv_geom(32, 256, 4, 4, 256, 3, 3, 1, 1, 1, 1);     // rn50 l3 3x3
  const ConvGeom p64 = cpu::make_conv_geom(32, 128, 8, 8, 128, 3, 3, 1, 1, 1, 1);     // rn50 l2 3x3
  const ConvGeom small = cpu::make_conv_geom(32, 256, 4, 4, 512, 1, 1, 2, 2, 0, 0);   // rn18 l4 ds
  const ConvGeom p16_1x1 = cpu::make_conv_geom(32, 256, 4, 4, 1024, 1, 1, 1, 1, 0, 0);  // rn50 l3 1x1
  for (ConvPass pass : {ConvPass::Forward, ConvPass::BackwardInput, ConvPass::BackwardWeight}) {
    CAPTURE(int(pass));
    CHECK(lowering(p4, pass) == ConvLowering::Batched);
    CHECK(lowering(p16, pass) == ConvLowering::Batched);
    CHECK(lowering(p16_1x1, pass) == (pass == ConvPass::Forward ? ConvLowering::PerSample : ConvLowering::Batched));
    CHECK(lowering(p64, pass) == ConvLowering::PerSample);
    CHECK(lowering(small, pass) == ConvLowering::PerSample);
  }
}

TEST_CASE("fast conv2d is bit-identical for 1 and 2 threads under every lowering") {
  // Big enough that the parallel regions open and the GEMMs thread inside.
  const ConvGeom tiny_p = cpu::make_conv_geom(33, 13, 3, 2, 17, 3, 3, 1, 1, 1, 1);     // P = 6
  const ConvGeom small_p = cpu::make_conv_geom(33, 13, 5, 4, 17, 3, 3, 1, 1, 1, 1);    // P = 20
  const ConvGeom large_p = cpu::make_conv_geom(5, 6, 19, 17, 9, 3, 3, 1, 1, 1, 1);     // P = 323
  const ConvGeom pointwise = cpu::make_conv_geom(33, 37, 5, 3, 29, 1, 1, 1, 1, 0, 0);  // P = 15
  const ConvGeom batched = cpu::make_conv_geom(33, 128, 2, 3, 192, 3, 3, 1, 1, 1, 1);  // plan_conv: Batched
  REQUIRE(cpu::plan_conv(batched, ConvPass::Forward, 4).lowering == ConvLowering::Batched);
  for (const ConvGeom& g : {tiny_p, small_p, large_p, pointwise, batched}) {
    CAPTURE(describe(g));
    const ConvData<float> d(g, 500);
    for (const ConvPlan& plan : plans_for(g)) {
      CAPTURE(int(plan.lowering));
      CAPTURE(plan.chunk);
      CAPTURE(plan.implicit);
      ConvOut<float> one, two;
      {
        ThreadCountGuard tc(1);
        one = d.fast(&plan);
      }
      {
        ThreadCountGuard tc(2);
        two = d.fast(&plan);
      }
      check_same_bits(one, two);
    }
    ConvOut<float> one, two;
    {
      ThreadCountGuard tc(1);
      one = d.fast();
    }
    {
      ThreadCountGuard tc(2);
      two = d.fast();
    }
    check_same_bits(one, two);
  }
}

TEST_CASE("the implicit-GEMM forward gives the column-matrix forward's bits where plan_conv picks it") {
  // With >= 16 GEMM columns the column-matrix GEMM runs the packed kernel unswapped, which
  // packs exactly the panels the implicit GEMM packs from x (plan_conv asks for more). Random
  // awkward shapes (odd C, H, W; strides 1-3; padding 0-3), both lowerings, 1 and 2 threads.
  // Both SGEMM kernels: run the suite with MINIDL_GEMM=avx2 and =avx512.
  Generator r(4242);
  int tested = 0;
  for (int i = 0; i < 60; ++i) {
    const ConvGeom g = random_geom(r, i % 2 ? 3 : 5);
    const ConvPlan chosen = cpu::plan_conv(g, ConvPass::Forward, 4);
    CAPTURE(describe(g));
    if (chosen.implicit) CHECK(chosen.chunk * g.col_cols() >= 64);
    const ConvData<float> d(g, 600 + i);
    for (ConvPlan plan : {ConvPlan{ConvLowering::PerSample, 1}, ConvPlan{ConvLowering::Batched, 2}}) {
      if (g.pointwise() || plan.chunk * g.col_cols() < 16) continue;
      CAPTURE(int(plan.lowering));
      for (int threads : {1, 2}) {
        CAPTURE(threads);
        ThreadCountGuard tc(threads);
        std::vector<float> dense(d.dy.size()), implicit(d.dy.size());
        cpu::conv2d_forward_planned<float>(g, plan, d.x.data(), d.w.data(), d.b.data(), dense.data());
        plan.implicit = true;
        cpu::conv2d_forward_planned<float>(g, plan, d.x.data(), d.w.data(), d.b.data(), implicit.data());
        plan.implicit = false;
        CHECK(same_bits(dense, implicit));
        ++tested;
      }
    }
  }
  CHECK(tested > 50);
  // Where plan_conv uses it (ResNet50 at 64x64): the stem, 3x3 stride 1 at P >= 64, layer4's
  // and layer3's batched chunks (P = 16, 3x3 and the 1x1/2 downsample); not per sample at
  // P = 16 nor stride 2 at P = 64; never for the backward passes, double or pointwise convs.
  const ConvGeom l2 = cpu::make_conv_geom(32, 128, 8, 8, 128, 3, 3, 1, 1, 1, 1);
  CHECK(cpu::plan_conv(l2, ConvPass::Forward, 4).implicit);
  CHECK(cpu::plan_conv(cpu::make_conv_geom(32, 3, 64, 64, 64, 7, 7, 2, 2, 3, 3), ConvPass::Forward, 4).implicit);
  CHECK(cpu::plan_conv(cpu::make_conv_geom(32, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1), ConvPass::Forward, 4).implicit);
  CHECK(cpu::plan_conv(cpu::make_conv_geom(32, 256, 4, 4, 256, 3, 3, 1, 1, 1, 1), ConvPass::Forward, 4).implicit);
  CHECK(cpu::plan_conv(cpu::make_conv_geom(32, 512, 8, 8, 1024, 1, 1, 2, 2, 0, 0), ConvPass::Forward, 4).implicit);
  CHECK_FALSE(cpu::plan_conv(cpu::make_conv_geom(1, 256, 4, 4, 256, 3, 3, 1, 1, 1, 1), ConvPass::Forward, 4).implicit);
  CHECK_FALSE(cpu::plan_conv(cpu::make_conv_geom(32, 128, 16, 16, 128, 3, 3, 2, 2, 1, 1), ConvPass::Forward, 4).implicit);
  CHECK_FALSE(cpu::plan_conv(l2, ConvPass::Forward, 8).implicit);
  CHECK_FALSE(cpu::plan_conv(l2, ConvPass::BackwardInput, 4).implicit);
  CHECK_FALSE(cpu::plan_conv(l2, ConvPass::BackwardWeight, 4).implicit);
  CHECK_FALSE(cpu::plan_conv(cpu::make_conv_geom(32, 64, 8, 8, 64, 1, 1, 1, 1, 0, 0), ConvPass::Forward, 4).implicit);
}

TEST_CASE("the per-sample forward with its weights packed once gives the per-sample dense GEMMs' bits") {
  // From 4 samples and 16 pixels the per-sample forward packs W once (MINIDL_CONV_PACK_W,
  // not set to 0 here) for every sample's GEMM, column-matrix and implicit alike; each must
  // equal im2col + gemm<float> (which reads W in place or packs it per item) + bias. Random
  // awkward shapes including pointwise ones, O across the 6- and 8-row tiles, 1 and 2 threads.
  Generator r(5151);
  int tested = 0;
  for (int i = 0; i < 40; ++i) {
    const ConvGeom g = random_geom(r, 4 + i % 3);
    if (g.col_cols() < 16) continue;
    CAPTURE(describe(g));
    const ConvData<float> d(g, 800 + i);
    const int64_t K = g.col_rows(), P = g.col_cols();
    std::vector<float> want(d.dy.size()), col(size_t(K * P));
    for (int64_t n = 0; n < g.N; ++n) {
      cpu::im2col_reference<float>(g, d.x.data() + n * g.C * g.H * g.W, col.data());
      float* yn = want.data() + n * g.O * P;
      cpu::gemm<float>(false, false, g.O, P, K, 1.f, d.w.data(), K, col.data(), P, 0.f, yn, P);
      for (int64_t o = 0; o < g.O; ++o)
        for (int64_t p = 0; p < P; ++p) yn[o * P + p] += d.b[size_t(o)];
    }
    for (bool implicit : {false, true}) {
      ConvPlan plan{ConvLowering::PerSample, 1};
      plan.implicit = implicit;
      for (int threads : {1, 2}) {
        CAPTURE(implicit);
        CAPTURE(threads);
        ThreadCountGuard tc(threads);
        std::vector<float> y(d.dy.size(), std::numeric_limits<float>::quiet_NaN());
        cpu::conv2d_forward_planned<float>(g, plan, d.x.data(), d.w.data(), d.b.data(), y.data());
        CHECK(same_bits(y, want));
        ++tested;
      }
    }
  }
  CHECK(tested > 40);
}

TEST_CASE("the per-sample backward data with W^T packed once gives the per-sample dense GEMMs' bits") {
  // From 4 samples and 25 pixels (where the dense W^T dY stops swapping) the per-sample
  // backward-data pass packs W^T once; each sample must equal gemm<float>(W^T dY_n) + col2im.
  Generator r(6262);
  int tested = 0;
  for (int i = 0; i < 40; ++i) {
    const ConvGeom g = random_geom(r, 4 + i % 3);
    if (g.col_cols() < 25) continue;
    CAPTURE(describe(g));
    const ConvData<float> d(g, 900 + i);
    const int64_t K = g.col_rows(), P = g.col_cols(), chw = g.C * g.H * g.W;
    std::vector<float> want(d.x.size(), 0.f), col(size_t(K * P));
    for (int64_t n = 0; n < g.N; ++n) {
      cpu::gemm<float>(true, false, K, P, g.O, 1.f, d.w.data(), K, d.dy.data() + n * g.O * P, P, 0.f, col.data(), P);
      cpu::col2im_reference<float>(g, col.data(), want.data() + n * chw);
    }
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      ThreadCountGuard tc(threads);
      std::vector<float> dx(d.x.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::conv2d_backward_input_planned<float>(g, ConvPlan{ConvLowering::PerSample, 1}, d.dy.data(), d.w.data(),
                                                dx.data());
      CHECK(same_bits(dx, want));
      ++tested;
    }
  }
  CHECK(tested > 20);
}

TEST_CASE("the per-sample backward weight gives the bits of dW = sum of dY_n cols_n^T, sample after sample") {
  // One lane here (N * P < 128): the [O, K] GEMMs summed in sample order through beta = 1;
  // the lanes' order is covered by the 1-vs-2-thread tests.
  Generator r(6464);
  int tested = 0;
  for (int i = 0; i < 60; ++i) {
    ConvGeom g = random_geom(r, 1 + i % 3);
    if (g.N * g.col_cols() >= 128) continue;
    CAPTURE(describe(g));
    const ConvData<float> d(g, 1100 + i);
    const int64_t K = g.col_rows(), P = g.col_cols(), chw = g.C * g.H * g.W;
    std::vector<float> want(d.w.size()), col(size_t(K * P));
    for (int64_t n = 0; n < g.N; ++n) {
      cpu::im2col_reference<float>(g, d.x.data() + n * chw, col.data());
      cpu::gemm<float>(false, true, g.O, K, P, 1.f, d.dy.data() + n * g.O * P, P, col.data(), P, n ? 1.f : 0.f,
                       want.data(), K);
    }
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      ThreadCountGuard tc(threads);
      std::vector<float> dw(d.w.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::conv2d_backward_weight_planned<float>(g, ConvPlan{ConvLowering::PerSample, 1}, d.dy.data(), d.x.data(),
                                                 dw.data(), nullptr);
      CHECK(same_bits(dw, want));
      ++tested;
    }
  }
  CHECK(tested > 30);
}

TEST_CASE("the batched backward data gives the bits of the chunk's dense GEMM and a col2im per sample") {
  // Each chunk must equal gemm<float>(W^T [dY_s for s in the chunk]) + col2im per sample, with
  // chunks of 1-3 samples (below and above 25 columns, where the dense W^T dY stops swapping),
  // P a multiple of the vector width or not, pointwise or not.
  Generator r(6363);
  std::vector<ConvGeom> geoms;
  for (int i = 0; i < 30; ++i) geoms.push_back(random_geom(r, 4 + i % 4));
  geoms.push_back(cpu::make_conv_geom(6, 5, 4, 4, 7, 3, 3, 1, 1, 1, 1));   // P = 16
  geoms.push_back(cpu::make_conv_geom(7, 6, 2, 2, 9, 3, 3, 1, 1, 1, 1));   // P = 4
  geoms.push_back(cpu::make_conv_geom(5, 9, 8, 8, 5, 1, 1, 1, 1, 0, 0));   // pointwise, P = 64
  int tested = 0;
  for (size_t i = 0; i < geoms.size(); ++i) {
    const ConvGeom& g = geoms[i];
    CAPTURE(describe(g));
    const ConvData<float> d(g, 1000 + i);
    const int64_t K = g.col_rows(), P = g.col_cols(), chw = g.C * g.H * g.W;
    for (int64_t chunk : {1, 2, 3}) {
      CAPTURE(chunk);
      std::vector<float> want(d.x.size(), 0.f), dyc, col, one(size_t(K * P));
      for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
        const int64_t nb = std::min(chunk, g.N - n0), ld = nb * P;
        dyc.assign(size_t(g.O * ld), 0.f);
        col.assign(size_t(K * ld), 0.f);
        for (int64_t s = 0; s < nb; ++s)
          for (int64_t o = 0; o < g.O; ++o)
            for (int64_t p = 0; p < P; ++p) dyc[size_t(o * ld + s * P + p)] = d.dy[size_t(((n0 + s) * g.O + o) * P + p)];
        cpu::gemm<float>(true, false, K, ld, g.O, 1.f, d.w.data(), K, dyc.data(), ld, 0.f, col.data(), ld);
        for (int64_t s = 0; s < nb; ++s) {
          for (int64_t k = 0; k < K; ++k)
            for (int64_t p = 0; p < P; ++p) one[size_t(k * P + p)] = col[size_t(k * ld + s * P + p)];
          if (g.pointwise())
            std::copy(one.begin(), one.end(), want.begin() + (n0 + s) * chw);
          else
            cpu::col2im_reference<float>(g, one.data(), want.data() + (n0 + s) * chw);
        }
      }
      for (int threads : {1, 2}) {
        CAPTURE(threads);
        ThreadCountGuard tc(threads);
        std::vector<float> dx(d.x.size(), std::numeric_limits<float>::quiet_NaN());
        cpu::conv2d_backward_input_planned<float>(g, ConvPlan{ConvLowering::Batched, chunk}, d.dy.data(), d.w.data(),
                                                  dx.data());
        CHECK(same_bits(dx, want));
        ++tested;
      }
    }
  }
  CHECK(tested > 150);
}

TEST_CASE("the batched chunk keeps the workspace bounded and leaves no starved last chunk") {
  // (K + O) * chunk * P elements stay within 4 MB unless one sample alone is larger; the
  // chunk never exceeds the batch; the last chunk (the rest) is not much smaller than the
  // others; a Batched plan uses this chunk.
  const ConvGeom shapes[] = {
      cpu::make_conv_geom(32, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1),    // rn50 l4 3x3, P = 4
      cpu::make_conv_geom(1000, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1),  // a large batch
      cpu::make_conv_geom(32, 256, 4, 4, 256, 3, 3, 1, 1, 1, 1),    // rn50 l3 3x3, P = 16
      cpu::make_conv_geom(33, 2048, 2, 2, 512, 1, 1, 1, 1, 0, 0),   // rn50 l4 1x1
      cpu::make_conv_geom(32, 3, 64, 64, 64, 7, 7, 2, 2, 3, 3),     // the stem, P = 1024
      cpu::make_conv_geom(7, 4096, 8, 8, 4096, 3, 3, 1, 1, 1, 1),   // one sample over the bound
  };
  for (const ConvGeom& g : shapes)
    for (int64_t bytes : {4, 8}) {
      CAPTURE(describe(g));
      CAPTURE(bytes);
      const int64_t chunk = cpu::conv_chunk(g, bytes);
      const int64_t per_sample = (g.col_rows() + g.O) * g.col_cols() * bytes;
      CHECK(chunk >= 1);
      CHECK(chunk <= g.N);
      if (per_sample <= (int64_t(4) << 20))
        CHECK(chunk * per_sample <= (int64_t(4) << 20));
      else
        CHECK(chunk == 1);
      const int64_t chunks = (g.N + chunk - 1) / chunk;
      CHECK(g.N - (chunks - 1) * chunk > chunk - chunks);
      for (ConvPass pass : {ConvPass::Forward, ConvPass::BackwardInput, ConvPass::BackwardWeight}) {
        const ConvPlan p = cpu::plan_conv(g, pass, bytes);
        CHECK(p.chunk == (p.lowering == ConvLowering::Batched ? chunk : 1));
      }
    }
}

TEST_CASE("fast im2col equals the per-element im2col, and col2im its per-element adjoint") {
  // Random geometries, then "same width" ones (stride 1, OW == W), which take the one-run
  // path: 3x3 pad 1 from 1 to 16 columns wide, 5x5 pad 2, 7x7 pad 3, unequal kernel sides,
  // and rows of the run that are not the whole output (pad 0 down the height).
  Generator r(77);
  std::vector<ConvGeom> geoms;
  for (int i = 0; i < 40; ++i) geoms.push_back(random_geom(r, 1));
  for (int64_t w : {1, 2, 3, 4, 5, 8, 16}) geoms.push_back(cpu::make_conv_geom(1, 3, 4, w, 1, 3, 3, 1, 1, 1, 1));
  geoms.push_back(cpu::make_conv_geom(1, 2, 6, 7, 1, 5, 5, 1, 1, 2, 2));
  geoms.push_back(cpu::make_conv_geom(1, 2, 9, 8, 1, 7, 7, 1, 1, 3, 3));
  geoms.push_back(cpu::make_conv_geom(1, 3, 5, 6, 1, 3, 5, 1, 1, 1, 2));
  geoms.push_back(cpu::make_conv_geom(1, 3, 7, 5, 1, 3, 3, 1, 1, 0, 1));
  geoms.push_back(cpu::make_conv_geom(1, 2, 5, 4, 1, 5, 3, 1, 1, 3, 1));  // padding past the kernel's reach
  for (int i = 0; i < int(geoms.size()); ++i) {
    const ConvGeom& g = geoms[size_t(i)];
    CAPTURE(describe(g));
    const auto x = testing::random_values<double>(g.C * g.H * g.W, 900 + i);
    const size_t n_col = size_t(g.col_rows() * g.col_cols());
    std::vector<double> col(n_col, std::numeric_limits<double>::quiet_NaN()), col_ref(n_col);
    cpu::im2col<double>(g, x.data(), col.data());
    cpu::im2col_reference<double>(g, x.data(), col_ref.data());
    CHECK(same_bits(col, col_ref));  // pure copies and zeros: exact

    const auto r_col = testing::random_values<float>(n_col, 950 + i);
    std::vector<float> back(x.size(), 0.f), back_ref(x.size(), 0.f);
    std::vector<float> consumed = r_col;  // col2im may zero its padding entries
    cpu::col2im<float>(g, consumed.data(), back.data());
    cpu::col2im_reference<float>(g, r_col.data(), back_ref.data());
    CHECK(same_bits(back, back_ref));  // same terms added in the same (p, q, i, j) order
  }
}
