// The README's "Following a tensor through a training step", verbatim, with its results
// checked: if the README example stops compiling or stops learning, this fails.
#include <cmath>
#include <sstream>

#include "test_util.h"

using namespace minidl;

TEST_CASE("README walkthrough: conv -> batch norm -> pools -> linear -> cross-entropy -> backward") {
  Generator gen(42);
  Tensor x = randn({8, 3, 16, 16}, DType::Float32, gen);
  Tensor w = randn({4, 3, 3, 3}, DType::Float32, gen).requires_grad_();
  Tensor gamma = ones({4}).requires_grad_(), beta = zeros({4}).requires_grad_();
  Tensor running_mean = zeros({4}), running_var = ones({4});
  Tensor fc = randn({10, 4}, DType::Float32, gen).requires_grad_();
  Tensor labels = from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7});

  Tensor h = conv2d(x, w, Tensor(), 1, 1);
  h = relu(batch_norm(h, gamma, beta, running_mean, running_var, true));
  h = adaptive_avg_pool2d_1x1(max_pool2d(h, 3, 2, 1)).flatten(1);
  CHECK(h.shape() == Shape{8, 4});
  Tensor loss = cross_entropy(linear(h, fc), labels, 0.1);
  loss.backward();
  std::ostringstream os;
  os << w.grad();

  CHECK(std::isfinite(loss.item()));
  CHECK(loss.item() > 0);
  REQUIRE(w.grad().defined());
  CHECK(w.grad().shape() == w.shape());
  CHECK(gamma.grad().shape() == Shape{4});
  CHECK(fc.grad().shape() == Shape{10, 4});
  CHECK(os.str().find("shape=[4, 3, 3, 3]") != std::string::npos);
  // The batch statistics moved the running mean away from its initial zeros.
  double moved = 0;
  for (double v : running_mean.to_vector<double>()) moved += std::abs(v);
  CHECK(moved > 0);

  // One plain gradient step along -grad lowers the loss on the same batch.
  {
    NoGradGuard ng;
    for (Tensor* p : {&w, &gamma, &beta, &fc}) add_(*p, p->grad(), -0.1);
  }
  Tensor h2 = conv2d(x, w, Tensor(), 1, 1);
  h2 = relu(batch_norm(h2, gamma, beta, running_mean, running_var, true));
  h2 = adaptive_avg_pool2d_1x1(max_pool2d(h2, 3, 2, 1)).flatten(1);
  CHECK(cross_entropy(linear(h2, fc), labels, 0.1).item() < loss.item());
}
