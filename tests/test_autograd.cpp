// The autograd engine: gradients of small expressions against derivatives worked out by hand,
// graph shapes (reuse, diamonds, deep chains), accumulation, grad mode, detach, the errors
// backward() raises, and gradients through views.
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

// A float64 leaf with values uniform in [lo, hi), requiring grad.
Tensor leaf(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  Tensor t = rand(s, lo, hi, DType::Float64, g);
  t.requires_grad_();
  return t;
}

Tensor constant(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  return rand(s, lo, hi, DType::Float64, g);
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// Elementwise map of a vector (for writing expected gradients).
template <class F>
std::vector<double> map(const std::vector<double>& v, F f) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f(v[i]);
  return r;
}

}  // namespace

TEST_CASE("y = x*x + 3x has dy/dx = 2x + 3") {
  Tensor x = leaf({7}, 1);
  Tensor y = sum(x * x + 3.0 * x);
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  y.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().shape() == x.shape());
  CHECK(x.grad().dtype() == DType::Float64);
  CHECK(max_rel_error(values(x.grad()), map(values(x), [](double v) { return 2 * v + 3; })) < 1e-14);
}

TEST_CASE("elementwise ops: sub, div, neg, exp, log, relu, mean against hand derivatives") {
  Tensor a = leaf({13}, 2), b = leaf({13}, 3, 0.5, 2.0);
  const auto av = values(a), bv = values(b);

  SUBCASE("a / b - b") {
    sum(a / b - b).backward();
    std::vector<double> ga(13), gb(13);
    for (int i = 0; i < 13; ++i) {
      ga[i] = 1 / bv[i];
      gb[i] = -av[i] / (bv[i] * bv[i]) - 1;
    }
    CHECK(max_rel_error(values(a.grad()), ga) < 1e-14);
    CHECK(max_rel_error(values(b.grad()), gb) < 1e-14);
  }
  SUBCASE("exp(a) * log(b) and -a") {
    sum(exp(a) * log(b) + (-a)).backward();
    std::vector<double> ga(13), gb(13);
    for (int i = 0; i < 13; ++i) {
      ga[i] = std::exp(av[i]) * std::log(bv[i]) - 1;
      gb[i] = std::exp(av[i]) / bv[i];
    }
    CHECK(max_rel_error(values(a.grad()), ga) < 1e-13);
    CHECK(max_rel_error(values(b.grad()), gb) < 1e-13);
  }
  SUBCASE("relu passes the gradient only where the input is positive") {
    sum(relu(a) * b).backward();
    std::vector<double> ga(13);
    for (int i = 0; i < 13; ++i) ga[i] = av[i] > 0 ? bv[i] : 0.0;
    CHECK(values(a.grad()) == ga);
    CHECK(max_rel_error(values(b.grad()), map(av, [](double v) { return v > 0 ? v : 0.0; })) < 1e-15);
  }
  SUBCASE("mean divides the gradient by the count; 5 - a negates it") {
    mean(5.0 - a).backward();
    for (double g : values(a.grad())) CHECK(g == doctest::Approx(-1.0 / 13).epsilon(1e-14));
  }
  SUBCASE("scalar / tensor") {
    sum(2.0 / b).backward();
    CHECK(max_rel_error(values(b.grad()), map(bv, [](double v) { return -2 / (v * v); })) < 1e-14);
  }
}

TEST_CASE("broadcast operands receive gradients summed over the broadcast dims") {
  Tensor a = leaf({3, 1, 5}, 4), b = leaf({4, 1}, 5);
  Tensor w = constant({3, 4, 5}, 6);
  sum(a * b * w).backward();
  // d/da[i,0,k] = sum_j b[j] w[i,j,k];  d/db[j,0] = sum_{i,k} a[i,0,k] w[i,j,k]
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 5; ++k) {
      double g = 0;
      for (int64_t j = 0; j < 4; ++j) g += b.at({j, 0}) * w.at({i, j, k});
      CHECK(a.grad().at({i, 0, k}) == doctest::Approx(g).epsilon(1e-13));
    }
  for (int64_t j = 0; j < 4; ++j) {
    double g = 0;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 5; ++k) g += a.at({i, 0, k}) * w.at({i, j, k});
    CHECK(b.grad().at({j, 0}) == doctest::Approx(g).epsilon(1e-13));
  }
  // A 0-dim operand collects the sum over everything.
  Tensor s = leaf({}, 7);
  Tensor x = constant({7, 3}, 8);
  sum(s * x + s).backward();
  double expect = 21;
  for (double v : values(x)) expect += v;
  CHECK(s.grad().dim() == 0);
  CHECK(s.grad().item() == doctest::Approx(expect).epsilon(1e-13));
}

TEST_CASE("a tensor used twice, diamonds and reused intermediates sum their paths") {
  SUBCASE("x * x") {
    Tensor x = leaf({5}, 10);
    sum(x * x).backward();
    CHECK(max_rel_error(values(x.grad()), map(values(x), [](double v) { return 2 * v; })) < 1e-15);
  }
  SUBCASE("x + x + x") {
    Tensor x = leaf({5}, 11);
    sum(x + x + x).backward();
    for (double g : values(x.grad())) CHECK(g == 3.0);
  }
  SUBCASE("diamond: a = exp(x), b = x*x, c = a*b") {
    Tensor x = leaf({17}, 12);
    Tensor a = exp(x), b = x * x;
    sum(a * b).backward();
    // dc/dx = e^x x^2 + e^x 2x
    auto expect = map(values(x), [](double v) { return std::exp(v) * (v * v + 2 * v); });
    CHECK(max_rel_error(values(x.grad()), expect, 1e-9) < 1e-13);
  }
  SUBCASE("an intermediate used twice: y = exp(x), z = y * y") {
    Tensor x = leaf({6}, 13);
    Tensor y = exp(x);
    sum(y * y).backward();
    CHECK(max_rel_error(values(x.grad()), map(values(x), [](double v) { return 2 * std::exp(2 * v); })) < 1e-13);
    CHECK_FALSE(y.grad().defined());  // only leaves keep .grad
  }
  SUBCASE("two leaves meeting several times") {
    Tensor x = leaf({4}, 14), y = leaf({4}, 15, 0.5, 1.5);
    Tensor u = x * y, v = x / y;
    sum(u * v + u).backward();  // = x^2 + x y
    const auto xv = values(x), yv = values(y);
    for (int i = 0; i < 4; ++i) {
      CHECK(x.grad().at({i}) == doctest::Approx(2 * xv[i] + yv[i]).epsilon(1e-13));
      CHECK(y.grad().at({i}) == doctest::Approx(xv[i]).epsilon(1e-13));
    }
  }
}

TEST_CASE("deep chains propagate the product of the local derivatives") {
  Tensor x = leaf({3}, 20);
  Tensor y = x;
  const int depth = 3000;
  for (int i = 0; i < depth; ++i) y = (i % 2 == 0) ? y * 1.001 : y + 0.5;
  sum(y).backward();
  const double expect = std::pow(1.001, depth / 2);
  for (double g : values(x.grad())) CHECK(g == doctest::Approx(expect).epsilon(1e-12));

  // Alternating through reshapes and permutes keeps shapes straight along the way.
  Tensor m = leaf({2, 3}, 21);
  Tensor z = m;
  for (int i = 0; i < 101; ++i) z = z.transpose(0, 1).reshape({z.size(1), z.size(0)}) * 1.0;
  REQUIRE(z.shape() == Shape{3, 2});
  sum(z * constant({3, 2}, 22)).backward();
  Tensor c = constant({3, 2}, 22);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) CHECK(m.grad().at({i, j}) == doctest::Approx(c.at({j, i})).epsilon(1e-14));
}

TEST_CASE("gradients accumulate with += across backward() calls until zero_grad") {
  Tensor x = leaf({7}, 30);
  const auto xv = values(x);
  sum(x * x).backward();
  sum(3.0 * x).backward();
  CHECK(max_rel_error(values(x.grad()), map(xv, [](double v) { return 2 * v + 3; })) < 1e-14);
  Tensor first_grad = x.grad();
  sum(x).backward();  // accumulates in place into the same buffer
  CHECK(x.grad().storage() == first_grad.storage());
  CHECK(max_rel_error(values(x.grad()), map(xv, [](double v) { return 2 * v + 4; })) < 1e-14);

  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(5.0 * x).backward();
  for (double g : values(x.grad())) CHECK(g == 5.0);
  // The gradient handed out before zero_grad is not touched by later passes.
  CHECK(max_rel_error(values(first_grad), map(xv, [](double v) { return 2 * v + 4; })) < 1e-14);
}

TEST_CASE("a leaf's gradient never aliases another tensor") {
  // backward keeps a gradient made for one leaf alone as its .grad without a copy (the
  // engine's owned_outright); everything shared must still be copied: x + z passes the
  // incoming gradient straight through to both leaves, a reshape hands w a view of it, and
  // a user's seed stays the user's.
  Tensor x = leaf({3, 4}, 80), z = leaf({3, 4}, 81), w = leaf({12}, 82);
  Tensor seed = constant({3, 4}, 83);
  (x + z + w.reshape({3, 4})).backward(seed);
  CHECK(x.grad().storage() != z.grad().storage());
  CHECK(x.grad().storage() != seed.storage());
  CHECK(w.grad().storage() != seed.storage());
  CHECK(w.grad().storage() != x.grad().storage());
  CHECK(values(x.grad()) == values(seed));
  CHECK(values(w.grad()) == values(seed));
  Tensor xg = x.grad();
  fill_(xg, 0.0);  // writing one leaf's gradient leaves the others and the seed alone
  CHECK(values(z.grad()) == values(seed));
  CHECK(values(w.grad()) == values(seed));

  Tensor u = leaf({5}, 86);  // a leaf seeded by the user keeps a copy
  Tensor s2 = constant({5}, 87);
  u.backward(s2);
  CHECK(u.grad().storage() != s2.storage());

  Tensor y = leaf({6}, 88);
  sum(y * 2.0).backward();
  for (double g : values(y.grad())) CHECK(g == 2.0);
}

TEST_CASE("inputs that do not require grad receive no gradient") {
  Tensor x = leaf({5}, 40);
  Tensor w = constant({5}, 41);
  Tensor y = sum(x * w + w);
  CHECK(y.requires_grad());
  y.backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  CHECK(values(x.grad()) == values(w));

  // An expression made only of constants records nothing.
  Tensor c = w * w + 1.0;
  CHECK_FALSE(c.requires_grad());
  CHECK(c.grad_fn() == nullptr);
}

TEST_CASE("NoGradGuard records nothing and restores the previous mode") {
  Tensor x = leaf({4}, 50);
  REQUIRE(grad_enabled());
  {
    NoGradGuard ng;
    CHECK_FALSE(grad_enabled());
    Tensor y = x * x + 1.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(y.is_leaf());
    Tensor v = x.reshape({2, 2}).transpose(0, 1).slice(0, 0, 2, 1);
    CHECK_FALSE(v.requires_grad());
    CHECK(v.grad_fn() == nullptr);
    {
      NoGradGuard inner;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());  // the inner guard restored "off", not "on"
    // Values are still computed.
    CHECK(y.at({1}) == doctest::Approx(x.at({1}) * x.at({1}) + 1).epsilon(1e-15));
  }
  CHECK(grad_enabled());
  Tensor z = x * 2.0;
  CHECK(z.requires_grad());
  REQUIRE(z.grad_fn() != nullptr);
  CHECK(z.grad_fn()->name == "mul");

  set_grad_enabled(false);
  {
    NoGradGuard ng;
  }
  CHECK_FALSE(grad_enabled());  // a guard opened while off leaves it off
  set_grad_enabled(true);

  // Grad mode is per thread: turning it off here does not affect another thread.
  NoGradGuard ng;
  bool other_thread_mode = false;
  std::thread t([&] { other_thread_mode = grad_enabled(); });
  t.join();
  CHECK(other_thread_mode);
  CHECK_FALSE(grad_enabled());
}

TEST_CASE("detach cuts the graph but keeps the values") {
  Tensor x = leaf({6}, 60);
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.storage() == x.storage());
  CHECK(values(d) == values(x));
  // x * stop_gradient(x): the detached factor is a constant, so the gradient is x, not 2x.
  sum(x * x.detach()).backward();
  CHECK(values(x.grad()) == values(x));
  // Detaching an intermediate stops everything upstream.
  Tensor y = exp(x);
  Tensor z = y.detach() * 3.0;
  CHECK_FALSE(z.requires_grad());
}

TEST_CASE("backward on a non-scalar needs an explicit gradient, which then works") {
  Tensor x = leaf({3, 4}, 70);
  Tensor y = x * 2.0;
  CHECK_ERROR_MENTIONS(y.backward(), "backward", "non-scalar", "[3, 4]");
  CHECK_FALSE(x.grad().defined());

  Tensor g = constant({3, 4}, 71);
  y.backward(g);
  CHECK(max_rel_error(values(x.grad()), map(values(g), [](double v) { return 2 * v; })) < 1e-15);

  // A gradient of the wrong shape or dtype is refused.
  Tensor y2 = x * 3.0;
  CHECK_ERROR_MENTIONS(y2.backward(constant({4, 3}, 72)), "backward", "[4, 3]", "[3, 4]");
  CHECK_ERROR_MENTIONS(y2.backward(ones({3, 4})), "backward", "float32", "float64");
  // A one-element tensor of any rank counts as a scalar.
  Tensor x1 = leaf({1, 1}, 73);
  (x1 * 4.0).backward();
  CHECK(x1.grad().item() == 4.0);
  // backward() on a leaf seeds its own gradient.
  Tensor l = leaf({}, 74);
  l.backward();
  CHECK(l.grad().item() == 1.0);
}

TEST_CASE("the graph is freed after backward unless retain_graph is set") {
  SUBCASE("second backward on a freed graph is an error") {
    Tensor x = leaf({5}, 80);
    Tensor y = sum(exp(x));
    y.backward();
    REQUIRE(y.grad_fn() != nullptr);
    CHECK(y.grad_fn()->released);
    CHECK_ERROR_MENTIONS(y.backward(), "already freed", "retain_graph");
  }
  SUBCASE("retain_graph allows a second pass, which accumulates") {
    Tensor x = leaf({5}, 81);
    Tensor y = sum(exp(x) * x);
    y.backward(Tensor(), /*retain_graph=*/true);
    CHECK_FALSE(y.grad_fn()->released);
    const auto once = values(x.grad());
    CHECK(max_rel_error(once, map(values(x), [](double v) { return std::exp(v) * (v + 1); })) < 1e-13);
    y.backward();  // second pass, frees
    CHECK(max_rel_error(values(x.grad()), map(once, [](double v) { return 2 * v; })) < 1e-14);
    CHECK_ERROR_MENTIONS(y.backward(), "already freed");
  }
  SUBCASE("a new graph from a freed intermediate fails where it meets the freed part") {
    Tensor x = leaf({5}, 82);
    Tensor h = exp(x);
    sum(h).backward();
    CHECK_ERROR_MENTIONS(sum(h * 2.0).backward(), "already freed", "exp");
  }
}

TEST_CASE("backward and requires_grad_ refuse what they cannot do") {
  Tensor c = constant({3}, 90);
  CHECK_ERROR_MENTIONS(sum(c).backward(), "backward", "does not require grad");
  Tensor x = leaf({3}, 91);
  Tensor y = x * 2.0;
  CHECK_ERROR_MENTIONS(y.requires_grad_(), "requires_grad_", "leaf", "mul");
  CHECK_ERROR_MENTIONS(y.requires_grad_(false), "leaf");
  {
    NoGradGuard ng;
    Tensor z = x * 2.0;
    CHECK_ERROR_MENTIONS(sum(z).backward(), "does not require grad");
  }
  CHECK_ERROR_MENTIONS(from_vector(std::vector<int64_t>{1, 2}).requires_grad_(), "requires_grad_", "int64");
  // Turning it off on a leaf is allowed, and then nothing is recorded.
  x.requires_grad_(false);
  CHECK_FALSE((x * 2.0).requires_grad());
}

TEST_CASE("views pass gradients back to the right places") {
  SUBCASE("slice with a step scatters into every other row") {
    Tensor x = leaf({7, 5}, 100);
    Tensor w = constant({3, 5}, 101);
    sum(x.slice(0, 1, 6, 2) * w).backward();  // rows 1, 3, 5
    for (int64_t i = 0; i < 7; ++i)
      for (int64_t j = 0; j < 5; ++j) {
        const double expect = (i % 2 == 1 && i < 6) ? w.at({(i - 1) / 2, j}) : 0.0;
        CHECK(x.grad().at({i, j}) == expect);
      }
  }
  SUBCASE("narrow on the last dim") {
    Tensor x = leaf({3, 7}, 102);
    Tensor w = constant({3, 3}, 103);
    sum(x.narrow(-1, 2, 3) * w).backward();
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 7; ++j)
        CHECK(x.grad().at({i, j}) == ((j >= 2 && j < 5) ? w.at({i, j - 2}) : 0.0));
  }
  SUBCASE("overlapping slices add up") {
    Tensor x = leaf({9}, 104);
    Tensor pair = x.slice(0, 0, 6) + x.slice(0, 3, 9);  // x[i] + x[i+3]
    (sum(pair) + sum(x.slice(0, 0, 9, 4))).backward();  // plus x[0], x[4], x[8]
    CHECK(values(x.grad()) == std::vector<double>{2, 1, 1, 2, 3, 2, 1, 1, 2});
  }
  SUBCASE("permute routes through the inverse permutation") {
    Tensor x = leaf({2, 3, 4}, 105);
    Tensor w = constant({4, 2, 3}, 106);
    Tensor p = x.permute({2, 0, 1});
    CHECK(p.grad_fn()->name == "permute");
    sum(p * w).backward();
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 4; ++k) CHECK(x.grad().at({i, j, k}) == w.at({k, i, j}));
  }
  SUBCASE("transpose, reshape, view, flatten, contiguous") {
    Tensor x = leaf({3, 5}, 107);
    Tensor w = constant({15}, 108);
    Tensor y = x.transpose(0, 1).contiguous().view({15});  // column-major order of x
    sum(y * w).backward();
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) CHECK(x.grad().at({i, j}) == w.at({j * 3 + i}));
    x.zero_grad();
    sum(x.flatten() * w).backward();
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) CHECK(x.grad().at({i, j}) == w.at({i * 5 + j}));
    x.zero_grad();
    sum(x.transpose(0, 1).reshape({15}) * w).backward();  // reshape of a non-contiguous view copies
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) CHECK(x.grad().at({i, j}) == w.at({j * 3 + i}));
  }
  SUBCASE("to(dtype) converts the gradient back") {
    Generator g(109);
    Tensor x = rand({5}, -1, 1, DType::Float32, g);
    x.requires_grad_();
    Tensor y = x.to(DType::Float64);
    sum(y * y).backward();
    REQUIRE(x.grad().defined());
    CHECK(x.grad().dtype() == DType::Float32);
    for (int64_t i = 0; i < 5; ++i) CHECK(x.grad().at({i}) == doctest::Approx(2 * x.at({i})).epsilon(1e-6));
  }
  SUBCASE("sum over a dim broadcasts the gradient back") {
    Tensor x = leaf({3, 4}, 110);
    Tensor w = constant({4}, 111);
    sum(sum(x, {0}) * w).backward();
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) CHECK(x.grad().at({i, j}) == w.at({j}));
    x.zero_grad();
    Tensor wk = constant({3, 1}, 112);
    sum(mean(x, {-1}, true) * wk).backward();
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) CHECK(x.grad().at({i, j}) == doctest::Approx(wk.at({i, 0}) / 4).epsilon(1e-14));
  }
}

TEST_CASE("matmul and linear gradients match the matrix formulas") {
  const int64_t M = 5, K = 7, N = 3;
  Tensor a = leaf({M, K}, 120), b = leaf({K, N}, 121);
  Tensor g = constant({M, N}, 122);
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape{M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t p = 0; p < K; ++p) s += a.at({i, p}) * b.at({p, j});
      CHECK(c.at({i, j}) == doctest::Approx(s).epsilon(1e-13));
    }
  sum(c * g).backward();
  // dA = G B^T, dB = A^T G
  for (int64_t i = 0; i < M; ++i)
    for (int64_t p = 0; p < K; ++p) {
      double s = 0;
      for (int64_t j = 0; j < N; ++j) s += g.at({i, j}) * b.at({p, j});
      CHECK(a.grad().at({i, p}) == doctest::Approx(s).epsilon(1e-13));
    }
  for (int64_t p = 0; p < K; ++p)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t i = 0; i < M; ++i) s += a.at({i, p}) * g.at({i, j});
      CHECK(b.grad().at({p, j}) == doctest::Approx(s).epsilon(1e-13));
    }

  // linear: y = x W^T + bias with a transposed (non-contiguous) x.
  Tensor xt = leaf({K, M}, 123);
  Tensor w = leaf({N, K}, 124), bias = leaf({N}, 125);
  Tensor x = xt.transpose(0, 1);  // [M, K]
  Tensor y = linear(x, w, bias);
  REQUIRE(y.shape() == Shape{M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = bias.at({j});
      for (int64_t p = 0; p < K; ++p) s += x.at({i, p}) * w.at({j, p});
      CHECK(y.at({i, j}) == doctest::Approx(s).epsilon(1e-13));
    }
  sum(y * g).backward();
  for (int64_t i = 0; i < M; ++i)
    for (int64_t p = 0; p < K; ++p) {
      double s = 0;
      for (int64_t j = 0; j < N; ++j) s += g.at({i, j}) * w.at({j, p});
      CHECK(xt.grad().at({p, i}) == doctest::Approx(s).epsilon(1e-13));
    }
  for (int64_t j = 0; j < N; ++j) {
    double sb = 0;
    for (int64_t i = 0; i < M; ++i) sb += g.at({i, j});
    CHECK(bias.grad().at({j}) == doctest::Approx(sb).epsilon(1e-13));
    for (int64_t p = 0; p < K; ++p) {
      double s = 0;
      for (int64_t i = 0; i < M; ++i) s += g.at({i, j}) * x.at({i, p});
      CHECK(w.grad().at({j, p}) == doctest::Approx(s).epsilon(1e-13));
    }
  }
}

TEST_CASE("set_grad installs a gradient that later passes add into") {
  Tensor x = leaf({3}, 130);
  x.set_grad(full({3}, 10.0, DType::Float64));
  sum(x * 2.0).backward();
  for (double g : values(x.grad())) CHECK(g == 12.0);
  CHECK_ERROR_MENTIONS(x.set_grad(ones({4}, DType::Float64)), "set_grad", "[4]", "[3]");
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
}

// Dropping a graph that was never run backward used to destroy it recursively (Node ->
// inputs -> TensorImpl -> grad_fn -> Node ...): a chain of ~150k ops overflowed an 8 MiB
// stack (SIGSEGV). Node's destructor now unlinks the chain iteratively.
TEST_CASE("dropping a very deep graph without backward does not overflow the stack") {
  Tensor x = leaf({1}, 140);
  {
    Tensor y = x;
    for (int i = 0; i < 300000; ++i) y = y * 1.0;
    CHECK(y.requires_grad());
  }
  CHECK(x.requires_grad());
}
