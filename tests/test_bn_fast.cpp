// The slab layout of the batch-norm kernels (kernels/cpu/batchnorm_slabs.cpp) against the row
// layout and the reference kernels: awkward shapes (rows of 1..64 values, channel counts that
// leave a short last block, N above the 64-sample chunk of the column sums), both dtypes,
// training and eval, the fused relu / residual epilogues against the same kernel run unfused,
// 1 vs 2 threads and the baseline vs AVX-512 copies of the loops (all bit-identical).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/batchnorm_slabs.h"
#include "kernels/cpu/gemm_fast.h"  // cpu_has_avx512
#include "tensor/factory.h"
#include "tensor/parallel.h"
#include "bn_test_util.h"

using namespace minidl;
using cpu::BnLayout;

namespace {

struct Case {
  int64_t N, C, HW;
};
// HW = 1, 3, 4, 16 (ResNet's 2x2 and 4x4), 31, 64; C that splits into blocks with a short
// last one (37, 1030); N = 70 > 64 (two chunks of the column sums); the last two are above
// the kernels' OpenMP threshold (2^15 values), so 2 threads really split them.
const std::vector<Case> kCases = {{1, 1, 3},    {3, 6, 1},   {3, 37, 4},   {70, 37, 4},  {2, 1030, 4},
                                  {5, 17, 16},  {70, 9, 16}, {3, 260, 16}, {4, 11, 31},  {3, 21, 64},
                                  {9, 1030, 4}, {70, 37, 16}};

// One case's inputs and everything the kernels write.
template <class T>
struct Bn {
  Case s;
  bool training;
  std::vector<T> x, dy, residual, gamma, beta;
  std::vector<T> y, mean, invstd, rm, rv, dx, dgamma, dbeta, d_residual;

  Bn(Case c, bool train, uint64_t seed, double offset) : s(c), training(train) {
    const int64_t n = s.N * s.C * s.HW;
    x = bn_test::normal_values<T>(n, seed, offset);
    dy = bn_test::normal_values<T>(n, seed + 1);
    residual = bn_test::normal_values<T>(n, seed + 2);
    gamma = bn_test::normal_values<T>(s.C, seed + 3, 1.0, 0.3);
    beta = bn_test::normal_values<T>(s.C, seed + 4);
    rm = bn_test::normal_values<T>(s.C, seed + 5);
    rv.assign(s.C, T(1.5));
  }

  // Forward then backward with `layout` (reference: the plain kernels, no epilogue).
  // fused: relu(y + residual) in the forward and its mask / the residual's gradient in the
  // backward.
  void run(BnLayout layout, bool fused, bool reference = false) {
    const int64_t n = s.N * s.C * s.HW;
    const double eps = 1e-5, momentum = 0.1;
    y.assign(n, T(0));
    mean.assign(s.C, T(0));
    invstd.assign(s.C, T(0));
    dx.assign(n, T(0));
    dgamma.assign(s.C, T(0));
    dbeta.assign(s.C, T(0));
    d_residual.assign(fused ? n : 0, T(0));
    const T* res = fused ? residual.data() : nullptr;
    if (training && reference)
      cpu::batchnorm_forward_train_reference(x.data(), gamma.data(), beta.data(), s.N, s.C, s.HW, eps, momentum,
                                             y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
    else if (training)
      cpu::batchnorm_forward_train(x.data(), gamma.data(), beta.data(), s.N, s.C, s.HW, eps, momentum, y.data(),
                                   mean.data(), invstd.data(), rm.data(), rv.data(), res, fused, layout);
    else if (reference)
      cpu::batchnorm_forward_eval_reference(x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), s.N, s.C,
                                            s.HW, eps, y.data());
    else
      cpu::batchnorm_forward_eval(x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), s.N, s.C, s.HW, eps,
                                  y.data(), res, fused, layout);
    if (!training)
      for (int64_t c = 0; c < s.C; ++c) {
        mean[c] = rm[c];
        invstd[c] = T(1.0 / std::sqrt(double(rv[c]) + eps));
      }
    if (reference)
      cpu::batchnorm_backward_reference(dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(), s.N, s.C, s.HW,
                                        training, dx.data(), dgamma.data(), dbeta.data());
    else
      cpu::batchnorm_backward(dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(), s.N, s.C, s.HW, training,
                              dx.data(), dgamma.data(), dbeta.data(), fused ? y.data() : nullptr,
                              fused ? d_residual.data() : nullptr, layout);
  }

  // The unfused graph on the same kernel: BN, then + residual and relu in T; relu's backward
  // masks dy, which is also the residual's gradient.
  void run_unfused(BnLayout layout) {
    const std::vector<T> dy_in = dy;
    run(layout, false);  // y = BN(x); its backward below is redone with the masked dy
    for (size_t i = 0; i < y.size(); ++i) {
      const T v = y[i] + residual[i];
      y[i] = v > 0 ? v : T(0);
      dy[i] = y[i] > 0 ? dy[i] : T(0);
    }
    d_residual = dy;
    cpu::batchnorm_backward(dy.data(), x.data(), gamma.data(), mean.data(), invstd.data(), s.N, s.C, s.HW, training,
                            dx.data(), dgamma.data(), dbeta.data(), (const T*)nullptr, (T*)nullptr, layout);
    dy = dy_in;
  }
};

template <class T>
void check_same(const Bn<T>& a, const Bn<T>& b) {
  CHECK(a.y == b.y);
  CHECK(a.mean == b.mean);
  CHECK(a.invstd == b.invstd);
  CHECK(a.rm == b.rm);
  CHECK(a.rv == b.rv);
  CHECK(a.dx == b.dx);
  CHECK(a.dgamma == b.dgamma);
  CHECK(a.dbeta == b.dbeta);
  CHECK(a.d_residual == b.d_residual);
}

// Every case, training and eval, centred and offset data: fn(case, training, seed, offset).
template <class F>
void for_each_case(F fn) {
  uint64_t seed = 1000;
  for (const Case& s : kCases)
    for (bool training : {true, false}) {
      if (training && s.N * s.HW == 1) continue;  // undefined (the op rejects it)
      for (double offset : {0.0, 300.0}) {
        CAPTURE(s.N);
        CAPTURE(s.C);
        CAPTURE(s.HW);
        CAPTURE(training);
        CAPTURE(offset);
        fn(s, training, seed += 10, offset);
      }
    }
}

template <class T>
void check_slabs_against_reference(double tol) {
  for_each_case([&](Case s, bool training, uint64_t seed, double offset) {
    Bn<T> ref(s, training, seed, offset), slabs = ref, rows = ref;
    ref.run(BnLayout::rows, false, /*reference=*/true);
    slabs.run(BnLayout::slabs, false);
    rows.run(BnLayout::rows, false);
    for (const Bn<T>* f : {&slabs, &rows}) {
      // The floors of test_fused_ops.cpp: y cancels |mean| * scale, dx amplifies by 1 / std.
      CHECK(bn_test::scaled_error(f->y, ref.y) < tol + 2 * std::numeric_limits<T>::epsilon() * offset);
      CHECK(bn_test::scaled_error(f->mean, ref.mean) < tol);
      CHECK(bn_test::scaled_error(f->invstd, ref.invstd) < tol * 10);
      CHECK(bn_test::scaled_error(f->rm, ref.rm) < tol);
      CHECK(bn_test::scaled_error(f->rv, ref.rv) < tol);
      CHECK(bn_test::scaled_error(f->dx, ref.dx) < tol * 10);
      CHECK(bn_test::scaled_error(f->dgamma, ref.dgamma) < tol * 10);
      CHECK(bn_test::scaled_error(f->dbeta, ref.dbeta) < tol);
    }
  });
}

}  // namespace

TEST_CASE("batch-norm slab layout matches the reference and the row layout") {
  SUBCASE("float64") { check_slabs_against_reference<double>(1e-12); }
  SUBCASE("float32") { check_slabs_against_reference<float>(2e-6); }
}

TEST_CASE("batch-norm slab layout: fused relu / residual equal the unfused graph bit for bit") {
  for_each_case([&](Case s, bool training, uint64_t seed, double offset) {
    for (BnLayout layout : {BnLayout::slabs, BnLayout::rows}) {
      Bn<float> fused(s, training, seed, offset), plain = fused;
      fused.run(layout, true);
      plain.run_unfused(layout);
      check_same(fused, plain);
    }
  });
}

TEST_CASE("batch-norm slab layout: bit-identical for 1 and 2 threads and for both ISA copies") {
  const bool avx512 = cpu::cpu_has_avx512();
  if (!avx512) std::printf("test_bn_fast: no AVX-512 here, the AVX-512 copy of the slab loops is not compared\n");
  for_each_case([&](Case s, bool training, uint64_t seed, double offset) {
    for (bool fused : {false, true}) {
      Bn<float> one(s, training, seed, offset), two = one, base = one;
      {
        ThreadCountGuard g(1);
        one.run(BnLayout::slabs, fused);
      }
      {
        ThreadCountGuard g(2);
        two.run(BnLayout::slabs, fused);
      }
      check_same(one, two);
      cpu::set_bn_slab_isa(cpu::BnSlabIsa::baseline);
      base.run(BnLayout::slabs, fused);
      cpu::set_bn_slab_isa(cpu::BnSlabIsa::automatic);
      check_same(one, base);  // automatic is the AVX-512 copy where the CPU has it
    }
  });
  if (avx512) CHECK(std::string(cpu::bn_slab_isa_name()) == "avx512");
}

TEST_CASE("batch-norm slab layout: statistics stay accurate when the mean dwarfs the spread") {
  // 1e4 + N(0, 1) in float32 over rows of 4 values: sum(x^2) - M mean^2 would keep no digits.
  const Case s{64, 3, 4};
  const std::vector<float> x = bn_test::normal_values<float>(s.N * s.C * s.HW, 7, 1e4);
  const std::vector<float> gamma(s.C, 1.f), beta(s.C, 0.f);
  std::vector<float> y(x.size()), sm(s.C), si(s.C);
  cpu::batchnorm_forward_train(x.data(), gamma.data(), beta.data(), s.N, s.C, s.HW, 1e-5, 0.1, y.data(), sm.data(),
                               si.data(), (float*)nullptr, (float*)nullptr, (const float*)nullptr, false, BnLayout::slabs);
  for (int64_t c = 0; c < s.C; ++c) {
    double mean = 0, m2 = 0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.HW; ++i) mean += x[(n * s.C + c) * s.HW + i];
    mean /= double(s.N * s.HW);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.HW; ++i) m2 += std::pow(x[(n * s.C + c) * s.HW + i] - mean, 2);
    const double invstd = 1 / std::sqrt(m2 / double(s.N * s.HW) + 1e-5);
    CHECK(std::abs(sm[c] - mean) < 1e-3);
    CHECK(std::abs(si[c] - invstd) / invstd < 1e-5);
  }
}

TEST_CASE("batch-norm layouts: automatic picks slabs when a channel fits a slab block") {
  if (std::getenv("MINIDL_BN_LAYOUT")) return;  // forced for the whole process
  CHECK(cpu::bn_use_slabs(BnLayout::automatic, 32, 4));
  CHECK(cpu::bn_use_slabs(BnLayout::automatic, 32, 1024));  // ResNet's stem at 64x64, batch 32
  CHECK(cpu::bn_use_slabs(BnLayout::automatic, 1, cpu::kBnSlabBlockValues));
  CHECK_FALSE(cpu::bn_use_slabs(BnLayout::automatic, 2, cpu::kBnSlabBlockValues / 2 + 1));
  CHECK_FALSE(cpu::bn_use_slabs(BnLayout::automatic, 32, 112 * 112));  // the stem at 224x224
  CHECK(cpu::bn_use_slabs(BnLayout::slabs, 32, 112 * 112));
  CHECK_FALSE(cpu::bn_use_slabs(BnLayout::rows, 32, 4));
}
