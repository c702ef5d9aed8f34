// The gradient checker itself: it must fail a wrong backward (even one off by 1e-4), pass a
// right one, re-draw inputs that sit on a kink instead of failing, refuse misuse, and pass
// a few of the real ops the gradcheck app covers.
#include <memory>

#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "test_util.h"

using namespace minidl;

namespace {

using V = std::vector<Tensor>;
constexpr DType F64 = DType::Float64;

// y = x^2 with a backward that returns g * factor * x: factor 2 is right, anything else wrong.
Tensor square(const Tensor& x, double factor) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = mul(x.detach(), x.detach());
  }
  Tensor saved = x.detach();
  return record(out, "square", {x}, [saved, factor](const Tensor& g) -> std::vector<Tensor> {
    return {mul(g, saved) * factor};
  });
}

GradcheckInputs one_normal(Shape s) {
  return [s](Generator& g) { return V{randn(s, F64, g).requires_grad_()}; };
}

}  // namespace

TEST_CASE("gradcheck: a backward that forgets the factor 2 fails; the right one passes") {
  GradcheckResult bad = gradcheck([](const V& x) { return square(x[0], 1.0); }, one_normal({3, 4}));
  CHECK_FALSE(bad.passed);
  CHECK(bad.redraws == 0);  // a wrong gradient is not mistaken for a kink
  CHECK(bad.max_error == doctest::Approx(0.5).epsilon(1e-6));  // |x - 2x| / |2x|
  CHECK(bad.message.find("over tolerance") != std::string::npos);

  GradcheckResult good = gradcheck([](const V& x) { return square(x[0], 2.0); }, one_normal({3, 4}));
  CHECK(good.passed);
  CHECK(good.max_error < 1e-8);
  REQUIRE(good.input_errors.size() == 1);
  CHECK(good.input_errors[0] == good.max_error);
}

TEST_CASE("gradcheck: a backward off by one part in 10^4 is caught") {
  GradcheckResult r = gradcheck([](const V& x) { return square(x[0], 2.0 * (1 + 1e-4)); }, one_normal({5}));
  CHECK_FALSE(r.passed);
  CHECK(r.max_error == doctest::Approx(1e-4).epsilon(1e-3));
}

TEST_CASE("gradcheck: relu inputs with exact zeros are re-drawn, not failed") {
  auto draws = std::make_shared<int>(0);
  auto make = [draws](Generator& g) {
    Tensor x = randn({4, 5}, F64, g);
    if ((*draws)++ == 0) x.data<double>()[3] = x.data<double>()[7] = 0.0;  // on the kink, first draw only
    return V{x.requires_grad_()};
  };
  GradcheckResult r = gradcheck([](const V& x) { return relu(x[0]); }, make);
  CHECK(r.passed);
  CHECK(r.redraws == 1);
  CHECK(*draws == 2);
}

TEST_CASE("gradcheck: max-pool ties are re-drawn, and a kink on every draw is reported") {
  auto draws = std::make_shared<int>(0);
  auto tied_first = [draws](Generator& g) {
    Tensor x = (*draws)++ == 0 ? full({1, 2, 4, 4}, 0.5, F64) : randn({1, 2, 4, 4}, F64, g);
    return V{x.requires_grad_()};
  };
  GradcheckResult r = gradcheck([](const V& x) { return max_pool2d(x[0], 2, 2); }, tied_first);
  CHECK(r.passed);
  CHECK(r.redraws == 1);

  GradcheckOptions opt;
  opt.max_redraws = 3;
  auto always_zero = [](Generator& g) {
    Tensor x = randn({6}, F64, g);
    x.data<double>()[2] = 0.0;
    return V{x.requires_grad_()};
  };
  GradcheckResult stuck = gradcheck([](const V& x) { return relu(x[0]); }, always_zero, opt);
  CHECK_FALSE(stuck.passed);
  CHECK(stuck.redraws == 3);
  CHECK(stuck.message.find("kink") != std::string::npos);
  CHECK(stuck.message.find("element [2]") != std::string::npos);
}

TEST_CASE("gradcheck: smooth ops with curvature are not mistaken for kinks") {
  // exp and 1/x have f'' as large as f'; nothing may be re-drawn.
  auto make = [](Generator& g) { return V{rand({20}, 0.5, 2.0, F64, g).requires_grad_()}; };
  GradcheckResult r = gradcheck([](const V& x) { return exp(x[0]) + 1.0 / x[0]; }, make);
  CHECK(r.passed);
  CHECK(r.redraws == 0);
}

TEST_CASE("gradcheck: misuse is a clear error") {
  auto f = [](const V& x) { return exp(x[0]); };
  CHECK_ERROR_MENTIONS(gradcheck(f, [](Generator& g) { return V{randn({3}, F64, g)}; }), "no input requires grad");
  CHECK_ERROR_MENTIONS(gradcheck(f, [](Generator& g) { return V{randn({3}, DType::Float32, g).requires_grad_()}; }),
                       "input 0", "float32", "float64");
  // Dropout with a generator that is not re-seeded inside f draws a new mask every call.
  auto shared = std::make_shared<Generator>(5);
  auto unseeded = [shared](const V& x) { return dropout(x[0], 0.5, true, *shared); };
  CHECK_ERROR_MENTIONS(gradcheck(unseeded, one_normal({10})), "different outputs", "re-seed");
}

TEST_CASE("gradcheck: constants are skipped and non-contiguous leaves are perturbed in place") {
  auto make = [](Generator& g) {
    Tensor a = randn({5, 3}, F64, g).transpose(0, 1).requires_grad_();  // [3, 5], strided
    Tensor c = randn({5}, F64, g);                                        // constant
    return V{a, c};
  };
  GradcheckResult r = gradcheck([](const V& x) { return mul(x[0], x[1]); }, make);
  CHECK(r.passed);
  REQUIRE(r.input_errors.size() == 2);
  CHECK(r.input_errors[1] == -1.0);
}

TEST_CASE("gradcheck: ops from the app's table") {
  SUBCASE("conv2d 3x3 stride 2 padding 1 with bias, odd sizes") {
    auto make = [](Generator& g) {
      return V{randn({2, 3, 7, 5}, F64, g).requires_grad_(), randn({4, 3, 3, 3}, F64, g).requires_grad_(),
               randn({4}, F64, g).requires_grad_()};
    };
    GradcheckResult r = gradcheck([](const V& x) { return conv2d(x[0], x[1], x[2], 2, 1); }, make);
    CHECK_MESSAGE(r.passed, r.message);
    CHECK(r.input_errors.size() == 3);
  }
  SUBCASE("batch_norm in training mode") {
    auto make = [](Generator& g) {
      return V{randn({3, 4, 3, 2}, F64, g).requires_grad_(), randn({4}, F64, g).requires_grad_(),
               randn({4}, F64, g).requires_grad_()};
    };
    GradcheckResult r =
        gradcheck([](const V& x) { return batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true); }, make);
    CHECK_MESSAGE(r.passed, r.message);
  }
  SUBCASE("cross_entropy with label smoothing; labels are int64 constants") {
    auto make = [](Generator& g) {
      return V{randn({5, 6}, F64, g).requires_grad_(), from_vector<int64_t>({0, 5, 2, 2, 3})};
    };
    GradcheckResult r = gradcheck([](const V& x) { return cross_entropy(x[0], x[1], 0.1); }, make);
    CHECK_MESSAGE(r.passed, r.message);
    CHECK(r.input_errors[1] == -1.0);
  }
  SUBCASE("dropout, its generator re-seeded inside f") {
    GradcheckResult r = gradcheck(
        [](const V& x) {
          Generator g(11);
          return dropout(x[0], 0.4, true, g);
        },
        one_normal({6, 5}));
    CHECK_MESSAGE(r.passed, r.message);
  }
}
