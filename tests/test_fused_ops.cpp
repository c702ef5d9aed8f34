// The memory-bound fast paths of issue 5 against their references: batch-norm kernels
// (forward train/eval, backward) against the plain ones, the fused batch_norm_relu /
// batch_norm_add_relu ops against the unfused graph (values, gradients, running stats),
// the 3x3/2 pad-1 max-pool fast path and the lane-summed global average pool. Awkward
// sizes (N = 1, 3; C = 1, 5, 17; H*W = 1, 7, 33, 1089), 1 and 2 threads, and bit-identity
// across thread counts where the kernels promise it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/pool.h"
#include "layers/batchnorm2d.h"
#include "tensor/factory.h"
#include "bn_test_util.h"
#include "test_util.h"
#include "tensor/parallel.h"
#include "test_util.h"

using namespace minidl;
using minidl::testing::max_rel_error;

namespace {

using bn_test::scaled_error;

struct BnShape {
  int64_t N, C, HW;
};

const std::vector<BnShape> kBnShapes = {{1, 1, 7},  {3, 1, 1},  {3, 5, 1},  {1, 5, 33}, {3, 17, 7},
                                        {3, 5, 33}, {1, 17, 1}, {3, 17, 1089}, {2, 3, 2500}};

// Everything the fast kernels write for one case, to compare across kernels and threads.
template <class T>
struct BnRun {
  std::vector<T> y, mean, invstd, rm, rv, dx, dgamma, dbeta;
};

template <class T>
BnRun<T> run_bn(const BnShape& s, bool training, bool reference, uint64_t seed, double offset) {
  const int64_t n = s.N * s.C * s.HW;
  const std::vector<T> x = bn_test::normal_values<T>(n, seed, offset), dy = bn_test::normal_values<T>(n, seed + 1);
  const std::vector<T> gamma = bn_test::normal_values<T>(s.C, seed + 2, 1.0, 0.3), beta = bn_test::normal_values<T>(s.C, seed + 3);
  BnRun<T> r;
  r.y.resize(n);
  r.mean.resize(s.C);
  r.invstd.resize(s.C);
  r.rm = bn_test::normal_values<T>(s.C, seed + 4);
  r.rv.assign(s.C, T(1.5));
  r.dx.resize(n);
  r.dgamma.resize(s.C);
  r.dbeta.resize(s.C);
  const double eps = 1e-5, momentum = 0.1;
  if (training) {
    if (reference)
      cpu::batchnorm_forward_train_reference(x.data(), gamma.data(), beta.data(), s.N, s.C, s.HW, eps, momentum,
                                             r.y.data(), r.mean.data(), r.invstd.data(), r.rm.data(), r.rv.data());
    else
      cpu::batchnorm_forward_train(x.data(), gamma.data(), beta.data(), s.N, s.C, s.HW, eps, momentum, r.y.data(),
                                   r.mean.data(), r.invstd.data(), r.rm.data(), r.rv.data());
  } else {
    if (reference)
      cpu::batchnorm_forward_eval_reference(x.data(), gamma.data(), beta.data(), r.rm.data(), r.rv.data(), s.N, s.C,
                                            s.HW, eps, r.y.data());
    else
      cpu::batchnorm_forward_eval(x.data(), gamma.data(), beta.data(), r.rm.data(), r.rv.data(), s.N, s.C, s.HW, eps,
                                  r.y.data());
    for (int64_t c = 0; c < s.C; ++c) {
      r.mean[c] = r.rm[c];
      r.invstd[c] = T(1.0 / std::sqrt(double(r.rv[c]) + eps));
    }
  }
  if (reference)
    cpu::batchnorm_backward_reference(dy.data(), x.data(), gamma.data(), r.mean.data(), r.invstd.data(), s.N, s.C, s.HW, training, r.dx.data(),
             r.dgamma.data(), r.dbeta.data());
  else
    cpu::batchnorm_backward(dy.data(), x.data(), gamma.data(), r.mean.data(), r.invstd.data(), s.N, s.C, s.HW,
                            training, r.dx.data(), r.dgamma.data(), r.dbeta.data());
  return r;
}

template <class T>
void check_bn_kernels(double tol) {
  uint64_t seed = 100;
  for (const BnShape& s : kBnShapes)
    for (bool training : {true, false}) {
      if (training && s.N * s.HW == 1) continue;  // undefined (the op rejects it)
      // offset 0: centred data; offset 300: |mean| >> std, where sum(x^2) - M mean^2 fails.
      for (double offset : {0.0, 300.0}) {
        CAPTURE(s.N);
        CAPTURE(s.C);
        CAPTURE(s.HW);
        CAPTURE(training);
        CAPTURE(offset);
        seed += 10;
        const BnRun<T> ref = run_bn<T>(s, training, true, seed, offset);
        BnRun<T> one, two;
        {
          ThreadCountGuard g(1);
          one = run_bn<T>(s, training, false, seed, offset);
        }
        {
          ThreadCountGuard g(2);
          two = run_bn<T>(s, training, false, seed, offset);
        }
        // y = x * scale + shift cancels |mean| * scale (~offset here) down to y (~1), so three
        // roundings at the scale of |mean| (shift, x * scale, the sum) set the floor: about the
        // inputs' own resolution (an ulp of x, times invstd ~ 1).
        CHECK(scaled_error(one.y, ref.y) < tol + 2 * std::numeric_limits<T>::epsilon() * offset);
        CHECK(scaled_error(one.mean, ref.mean) < tol);
        // invstd: the large offset costs float a few digits in the inputs themselves.
        CHECK(max_rel_error(std::vector<double>(one.invstd.begin(), one.invstd.end()),
                            std::vector<double>(ref.invstd.begin(), ref.invstd.end())) < tol * 10);
        CHECK(scaled_error(one.rm, ref.rm) < tol);
        CHECK(scaled_error(one.rv, ref.rv) < tol);
        // The gradient amplifies input rounding by invstd * |x - mean| ~ 1 / std.
        CHECK(scaled_error(one.dx, ref.dx) < tol * 10);
        CHECK(scaled_error(one.dgamma, ref.dgamma) < tol * 10);
        CHECK(scaled_error(one.dbeta, ref.dbeta) < tol);
        // One thread per channel, a fixed order inside it: identical for any thread count.
        CHECK(one.y == two.y);
        CHECK(one.mean == two.mean);
        CHECK(one.invstd == two.invstd);
        CHECK(one.rv == two.rv);
        CHECK(one.dx == two.dx);
        CHECK(one.dgamma == two.dgamma);
        CHECK(one.dbeta == two.dbeta);
      }
    }
}

}  // namespace

TEST_CASE("batch-norm fast kernels match the reference kernels, bit-identical across thread counts") {
  SUBCASE("float64") { check_bn_kernels<double>(1e-12); }
  SUBCASE("float32") { check_bn_kernels<float>(2e-6); }
}

TEST_CASE("batch-norm statistics stay accurate when the mean dwarfs the spread") {
  // One channel: 1e4 + N(0, 1) in float32. The variance from sum(x^2) - M mean^2 would keep
  // no digits (x^2 ~ 1e8 has ulp 8); the per-row deviations keep float's precision.
  const BnShape s{4, 1, 3000};
  const std::vector<float> x = bn_test::normal_values<float>(s.N * s.HW, 5, 1e4);
  double mean = 0, m2 = 0;
  for (float v : x) mean += v;
  mean /= double(x.size());
  for (float v : x) m2 += (v - mean) * (v - mean);
  const double invstd = 1 / std::sqrt(m2 / double(x.size()) + 1e-5);
  std::vector<float> y(x.size()), sm(1), si(1);
  const float gamma = 1, beta = 0;
  cpu::batchnorm_forward_train(x.data(), &gamma, &beta, s.N, s.C, s.HW, 1e-5, 0.1, y.data(), sm.data(), si.data(),
                               (float*)nullptr, (float*)nullptr);
  CHECK(std::abs(sm[0] - mean) < 1e-3);
  CHECK(std::abs(si[0] - invstd) / invstd < 1e-5);
}

namespace {

struct FusedCase {
  Shape shape;
  DType dt;
  bool training;
};

Tensor leaf(const Shape& s, DType dt, uint64_t seed, double offset = 0.0, double scale = 1.0) {
  Generator g(seed);
  Tensor t = randn(s, dt, g) * scale + offset;
  return t.detach().requires_grad_();
}

// fused(x, id) vs the unfused graph, forward and backward, with its own copies of the
// running statistics so both paths update them from the same start.
void check_fused(const FusedCase& fc, bool with_identity, uint64_t seed) {
  CAPTURE(shape_str(fc.shape));
  CAPTURE(dtype_name(fc.dt));
  CAPTURE(fc.training);
  CAPTURE(with_identity);
  const int64_t C = fc.shape[1];
  Tensor x = leaf(fc.shape, fc.dt, seed), id = leaf(fc.shape, fc.dt, seed + 1);
  Tensor w = leaf({C}, fc.dt, seed + 2, 1.0, 0.5), b = leaf({C}, fc.dt, seed + 3, 0.0, 0.5);
  Generator gg(seed + 4);
  Tensor G = randn(fc.shape, fc.dt, gg);
  auto stats = [&]() {
    Generator g(seed + 5);
    return std::make_pair(randn({C}, fc.dt, g), rand({C}, 0.5, 2.0, fc.dt, g));
  };
  auto [rm1, rv1] = stats();
  auto [rm2, rv2] = stats();

  Tensor fused = with_identity ? batch_norm_add_relu(x, id, w, b, rm1, rv1, fc.training)
                               : batch_norm_relu(x, w, b, rm1, rv1, fc.training);
  sum(fused * G).backward();
  std::vector<Tensor> g_fused = {x.grad(), w.grad(), b.grad()};
  if (with_identity) g_fused.push_back(id.grad());
  for (Tensor* t : {&x, &w, &b, &id}) t->zero_grad();

  Tensor bn = batch_norm(x, w, b, rm2, rv2, fc.training);
  Tensor plain = relu(with_identity ? bn + id : bn);
  sum(plain * G).backward();
  std::vector<Tensor> g_plain = {x.grad(), w.grad(), b.grad()};
  if (with_identity) g_plain.push_back(id.grad());

  const double tol = fc.dt == DType::Float32 ? 1e-6 : 1e-12;
  CHECK(max_rel_error(fused, plain) < tol);
  // Same roundings in the same order: in fact bit for bit.
  CHECK(fused.to_vector<double>() == plain.to_vector<double>());
  CHECK(rm1.to_vector<double>() == rm2.to_vector<double>());
  CHECK(rv1.to_vector<double>() == rv2.to_vector<double>());
  for (size_t k = 0; k < g_fused.size(); ++k) {
    CAPTURE(k);
    REQUIRE(g_fused[k].defined());
    REQUIRE(g_plain[k].defined());
    CHECK(max_rel_error(g_fused[k], g_plain[k], 1e-3) < tol);
  }
}

}  // namespace

TEST_CASE("batch_norm_relu and batch_norm_add_relu equal the unfused graph, forward and backward") {
  uint64_t seed = 700;
  for (int threads : {1, 2}) {
    ThreadCountGuard guard(threads);
    for (DType dt : {DType::Float64, DType::Float32})
      for (bool training : {true, false})
        for (const Shape& s : std::vector<Shape>{{1, 5, 7, 1}, {3, 1, 1, 1}, {3, 17, 3, 11}, {2, 5, 33, 33}, {6, 4}})
          for (bool with_identity : {false, true}) check_fused({s, dt, training}, with_identity, seed += 7);
  }
}

TEST_CASE("batch_norm_add_relu: gradient to the identity only, and shape checks") {
  Tensor x = randn({2, 3, 4, 4}, DType::Float64).detach();
  Tensor id = randn({2, 3, 4, 4}, DType::Float64).detach().requires_grad_();
  Tensor w = ones({3}, DType::Float64), b = zeros({3}, DType::Float64);
  Tensor out = batch_norm_add_relu(x, id, w, b, Tensor(), Tensor(), true);
  sum(out).backward();
  const std::vector<double> o = out.to_vector<double>(), g = id.grad().to_vector<double>();
  for (size_t i = 0; i < o.size(); ++i) CHECK(g[i] == (o[i] > 0 ? 1.0 : 0.0));
  CHECK_THROWS(batch_norm_add_relu(x, randn({2, 3, 4, 5}, DType::Float64), w, b, Tensor(), Tensor(), true));
  CHECK_THROWS(batch_norm_add_relu(x, randn({2, 3, 4, 4}, DType::Float32), w, b, Tensor(), Tensor(), true));
}

TEST_CASE("BatchNorm2d::forward_relu / forward_add_relu update the module like forward + relu") {
  for (bool train : {true, false}) {
    CAPTURE(train);
    BatchNorm2d a(5), b(5);
    a.train(train);
    b.train(train);
    Tensor x = randn({3, 5, 4, 6}), id = randn({3, 5, 4, 6});
    Tensor fused = a.forward_add_relu(x, id);
    Tensor plain = relu(b.forward(x) + id);
    CHECK(fused.to_vector<float>() == plain.to_vector<float>());
    CHECK(a.running_mean.to_vector<float>() == b.running_mean.to_vector<float>());
    CHECK(a.running_var.to_vector<float>() == b.running_var.to_vector<float>());
    CHECK(a.forward_relu(x).to_vector<float>() == relu(b.forward(x)).to_vector<float>());
    CHECK(a.num_batches_tracked.item() == (train ? 2 : 0));
    CHECK(b.num_batches_tracked.item() == a.num_batches_tracked.item());
  }
}

// ---- pooling ----

namespace {

// The fast path against the reference on input x: identical argmax, bit-identical values
// (signed zeros and NaN payloads included), on 1 and 2 threads.
template <class T>
void check_maxpool_fast_on(int64_t N, int64_t C, int64_t H, int64_t W, const std::vector<T>& x) {
  CAPTURE(N);
  CAPTURE(C);
  CAPTURE(H);
  CAPTURE(W);
  const cpu::PoolGeom g = cpu::make_pool_geom(N, C, H, W, 3, 3, 2, 2, 1, 1);
  const int64_t n_out = N * C * g.OH * g.OW;
  std::vector<T> y_ref(n_out);
  std::vector<int32_t> a_ref(n_out);
  cpu::maxpool2d_forward_reference(g, x.data(), y_ref.data(), a_ref.data());
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    ThreadCountGuard t(threads);
    std::vector<T> y(n_out);
    std::vector<int32_t> a(n_out);
    cpu::maxpool2d_forward(g, x.data(), y.data(), a.data());
    CHECK(a == a_ref);
    CHECK(std::memcmp(y.data(), y_ref.data(), n_out * sizeof(T)) == 0);
    for (int64_t i = 0; i < n_out; ++i) {
      // The saved index points at the value written (NaN included).
      const T at = x[(i / (g.OH * g.OW)) * H * W + a[i]];
      CHECK(std::memcmp(&at, &y[i], sizeof(T)) == 0);
    }
  }
}

template <class T>
void check_maxpool_fast(int64_t N, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  std::vector<T> x = bn_test::normal_values<T>(N * C * H * W, seed);
  // Ties (a coarse grid of values) and NaNs exercise the first-wins rules.
  if (seed % 3 == 0)
    for (auto& v : x) v = std::round(v);
  if (seed % 4 == 0 && !x.empty()) x[x.size() / 2] = std::numeric_limits<T>::quiet_NaN();
  check_maxpool_fast_on(N, C, H, W, x);
}

// Inputs that stress the first-wins rules: `kind` 0 is after a ReLU (about half exact zeros,
// some of them -0.0), 1 has NaNs (two payloads) in interior and border windows, 2 has -inf
// runs (whole windows of -inf) and +inf, 3 is all of these mixed.
template <class T>
std::vector<T> awkward_values(int64_t N, int64_t C, int64_t H, int64_t W, int kind, uint64_t seed) {
  std::vector<T> x = bn_test::normal_values<T>(N * C * H * W, seed);
  const T inf = std::numeric_limits<T>::infinity();
  for (size_t k = 0; k < x.size(); ++k) {
    const uint64_t r = (k * 2654435761u + seed * 97) % 101;
    if (kind == 0 || kind == 3) x[k] = x[k] > 0 ? x[k] : (r % 2 ? T(0) : -T(0));
    if ((kind == 1 || kind == 3) && r < 3) x[k] = std::numeric_limits<T>::quiet_NaN();
    if ((kind == 1 || kind == 3) && r == 3) x[k] = -std::numeric_limits<T>::quiet_NaN();
    if ((kind == 2 || kind == 3) && r >= 90) x[k] = -inf;
    if ((kind == 2 || kind == 3) && r == 89) x[k] = inf;
  }
  if (kind == 2 || kind == 3)  // a 3x3 block of -inf at the top left of every plane
    for (int64_t p = 0; p < N * C; ++p)
      for (int64_t h = 0; h < std::min<int64_t>(H, 3); ++h)
        for (int64_t w = 0; w < std::min<int64_t>(W, 3); ++w) x[(p * H + h) * W + w] = -inf;
  if ((kind == 1 || kind == 3) && H * W > 0) {  // a NaN at a corner and at the centre of the last plane
    const int64_t last = (N * C - 1) * H * W;
    x[last + H * W - 1] = std::numeric_limits<T>::quiet_NaN();
    x[last + (H / 2) * W + W / 2] = std::numeric_limits<T>::quiet_NaN();
  }
  return x;
}

}  // namespace

TEST_CASE("max_pool2d 3x3/2 pad 1 fast path: same values and saved argmax as the reference") {
  uint64_t seed = 0;
  for (int64_t H : {1, 2, 3, 4, 5, 8, 33})
    for (int64_t W : {1, 2, 3, 4, 7, 32}) {
      check_maxpool_fast<float>(1, 3, H, W, ++seed);
      check_maxpool_fast<double>(2, 1, H, W, ++seed);
    }
  check_maxpool_fast<float>(3, 17, 65, 63, 12);  // big enough for the parallel region
  check_maxpool_fast<float>(2, 5, 9, 300, 24);    // rows longer than one interior chunk
}

TEST_CASE("max_pool2d 3x3/2 pad 1 fast path: ReLU zeros, signed zeros, NaN, +-inf") {
  uint64_t seed = 100;
  for (int kind = 0; kind < 4; ++kind) {
    CAPTURE(kind);
    for (int64_t NC : {1, 37})
      for (int64_t H : {1, 2, 3, 7, 32, 33})
        for (int64_t W : {1, 2, 3, 7, 32, 33}) {
          check_maxpool_fast_on<float>(1, NC, H, W, awkward_values<float>(1, NC, H, W, kind, ++seed));
          check_maxpool_fast_on<double>(NC, 1, H, W, awkward_values<double>(NC, 1, H, W, kind, ++seed));
        }
    // Large enough for the parallel region and for rows wider than one interior chunk.
    check_maxpool_fast_on<float>(4, 37, 33, 200, awkward_values<float>(4, 37, 33, 200, kind, ++seed));
  }
}

TEST_CASE("max_pool2d backward routes each gradient to the saved argmax") {
  // 3x3/2 pad 1 on a 1x1x4x4 ramp: each window's max is its bottom-right in-bounds cell.
  std::vector<double> v(16);
  for (int i = 0; i < 16; ++i) v[i] = i;
  Tensor x = from_vector(v, {1, 1, 4, 4}).requires_grad_();
  Tensor y = max_pool2d(x, 3, 2, 1);
  CHECK(y.to_vector<double>() == std::vector<double>{5, 7, 13, 15});
  sum(y * from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2})).backward();
  std::vector<double> want(16, 0.0);
  want[5] = 1, want[7] = 2, want[13] = 3, want[15] = 4;
  CHECK(x.grad().to_vector<double>() == want);
}

TEST_CASE("global average pool: lane sums match the reference") {
  for (int64_t HW : {1, 7, 16, 33, 1089, 5000}) {
    CAPTURE(HW);
    const int64_t NC = 5;
    const std::vector<float> x = bn_test::normal_values<float>(NC * HW, HW, 2.0);
    std::vector<float> y(NC), y_ref(NC);
    cpu::global_avgpool_forward(x.data(), NC, HW, y.data());
    cpu::global_avgpool_forward_reference(x.data(), NC, HW, y_ref.data());
    CHECK(scaled_error(y, y_ref) < 1e-7);  // both sum in double
    const std::vector<double> xd(x.begin(), x.end());
    std::vector<double> yd(NC), yd_ref(NC);
    cpu::global_avgpool_forward(xd.data(), NC, HW, yd.data());
    cpu::global_avgpool_forward_reference(xd.data(), NC, HW, yd_ref.data());
    CHECK(scaled_error(yd, yd_ref) < 1e-14);
  }
}
