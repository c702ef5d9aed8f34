// gradcheck: checks every differentiable op's backward against central differences.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
//   ./build/apps/gradcheck                  # every case; exit code 1 if any fails
//   ./build/apps/gradcheck --list           # the cases, without running them
//   ./build/apps/gradcheck --filter conv2d  # only ops whose name contains "conv2d"
//   ./build/apps/gradcheck --seed 7 --verbose   # other inputs; per-input errors and details
//
// Each row of the table below is one case: the op's name, a description of the shapes, a
// maker that draws the float64 inputs (the ones marked requires_grad are checked) and the
// function under test. The checking itself is autograd/gradcheck.h. Errors are relative
// (see GradcheckOptions); the default tolerance is 1e-6, and a case only sets its own when
// the reason is written next to it.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/factory.h"

using namespace minidl;

namespace {

using V = std::vector<Tensor>;
using Draw = std::function<Tensor(Generator&)>;  // one input of a case
constexpr DType F64 = DType::Float64;

// ---- input recipes ----
Draw normal(Shape s, double std = 1.0) {  // N(0, std^2), checked
  return [s, std](Generator& g) { return (randn(s, F64, g) * std).detach().requires_grad_(); };
}
Draw positive(Shape s) {  // U[0.5, 2], checked (log, divisors)
  return [s](Generator& g) { return rand(s, 0.5, 2.0, F64, g).requires_grad_(); };
}
Draw nonzero(Shape s) {  // +-U[0.5, 2], checked (divisors of either sign)
  return [s](Generator& g) {
    Tensor t = rand(s, 0.5, 2.0, F64, g);
    double* p = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] *= g.uniform() < 0.5 ? -1.0 : 1.0;
    return t.requires_grad_();
  };
}
Draw transposed(Shape s) {  // N(0,1) as a non-contiguous leaf of shape s (last two dims swapped in memory)
  return [s](Generator& g) {
    Shape t = s;
    std::swap(t[t.size() - 2], t[t.size() - 1]);
    return randn(t, F64, g).transpose(-2, -1).requires_grad_();
  };
}
Draw constant(Draw d) {  // the same values, not checked (running statistics)
  return [d](Generator& g) { return d(g).detach(); };
}
Draw labels(int64_t n, int64_t classes) {  // int64 class indices
  return [n, classes](Generator& g) {
    std::vector<int64_t> v(n);
    for (auto& x : v) x = int64_t(g.randint(uint64_t(classes)));
    return from_vector(v, {n});
  };
}
GradcheckInputs inputs(std::vector<Draw> draws) {
  return [draws](Generator& g) {
    V out;
    for (const Draw& d : draws) out.push_back(d(g));
    return out;
  };
}

struct Case {
  std::string op, shapes;
  GradcheckInputs make;
  GradcheckFn f;
  double tolerance = GradcheckOptions{}.tolerance;  // 1e-6
  double step = GradcheckOptions{}.step;            // 1e-6
};

// Batch-norm in training mode with fresh running statistics on every call (the op updates
// them in place; the output does not depend on them).
Tensor bn_train(const V& x) {
  const int64_t C = x[0].size(1);
  return batch_norm(x[0], x[1], x[2], zeros({C}, F64), ones({C}, F64), true);
}

Tensor conv(const V& x, int64_t stride, int64_t pad) {
  return conv2d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), stride, pad);
}

// conv -> batch_norm -> relu -> max_pool -> global pool -> linear -> cross_entropy, and the
// same with the fused batch_norm_relu (small_net_fused).
// Inputs: image, conv weight, bn weight, bn bias, fc weight, fc bias, labels. The conv has
// no bias, as in ResNet: batch norm subtracts any per-channel constant, so its gradient is
// exactly zero and a check of it would compare rounding noise with rounding noise.
Tensor small_net(const V& x) {
  Tensor h = conv2d(x[0], x[1], Tensor(), 1, 1);
  h = batch_norm(h, x[2], x[3], Tensor(), Tensor(), true);
  h = max_pool2d(relu(h), 2, 2);
  h = adaptive_avg_pool2d_1x1(h).flatten(1);
  return cross_entropy(linear(h, x[4], x[5]), x[6], 0.1);
}

Tensor small_net_fused(const V& x) {
  Tensor h = conv2d(x[0], x[1], Tensor(), 1, 1);
  h = max_pool2d(batch_norm_relu(h, x[2], x[3], Tensor(), Tensor(), true), 3, 2, 1);
  h = adaptive_avg_pool2d_1x1(h).flatten(1);
  return cross_entropy(linear(h, x[4], x[5]), x[6], 0.1);
}

std::vector<Case> all_cases() {
  const Draw A = normal({3, 5, 7});
  return {
      // ---- elementwise, with broadcasting ----
      {"add", "[3,5,7] + [3,5,7]", inputs({A, normal({3, 5, 7})}), [](const V& x) { return add(x[0], x[1]); }},
      {"add", "[3,5,7] + [5,1]", inputs({A, normal({5, 1})}), [](const V& x) { return add(x[0], x[1]); }},
      {"add", "[4,1] + [1,6]", inputs({normal({4, 1}), normal({1, 6})}), [](const V& x) { return x[0] + x[1]; }},
      {"add", "[3,5,7] + [] and + 2.5", inputs({A, normal({})}), [](const V& x) { return x[0] + x[1] + 2.5; }},
      {"sub", "[3,5,7] - [3,5,7]", inputs({A, normal({3, 5, 7})}), [](const V& x) { return sub(x[0], x[1]); }},
      {"sub", "[5,1] - [3,5,7]", inputs({normal({5, 1}), A}), [](const V& x) { return sub(x[0], x[1]); }},
      {"sub", "[] - [3,5,7] and 2.5 - x", inputs({normal({}), A}), [](const V& x) { return 2.5 - (x[0] - x[1]); }},
      {"mul", "[3,5,7] * [3,5,7]", inputs({A, normal({3, 5, 7})}), [](const V& x) { return mul(x[0], x[1]); }},
      {"mul", "[3,5,7] * [5,1]", inputs({A, normal({5, 1})}), [](const V& x) { return mul(x[0], x[1]); }},
      {"mul", "[7] * [3,5,7] and * -1.5", inputs({normal({7}), A}), [](const V& x) { return x[0] * x[1] * -1.5; }},
      {"mul", "x * x (same tensor twice)", inputs({A}), [](const V& x) { return mul(x[0], x[0]); }},
      {"div", "[3,5,7] / [3,5,7]", inputs({A, nonzero({3, 5, 7})}), [](const V& x) { return div(x[0], x[1]); }},
      {"div", "[3,5,7] / [5,1]", inputs({A, nonzero({5, 1})}), [](const V& x) { return div(x[0], x[1]); }},
      {"div", "[3,5,7] / [] and 2 / x", inputs({nonzero({3, 5, 7}), nonzero({})}),
       [](const V& x) { return 2.0 / (x[0] / x[1]) + x[0] / 4.0; }},
      {"neg", "[3,5,7]", inputs({A}), [](const V& x) { return neg(x[0]); }},
      {"neg", "[1] and -x", inputs({normal({1})}), [](const V& x) { return -x[0]; }},
      {"exp", "[3,5,7]", inputs({A}), [](const V& x) { return exp(x[0]); }},
      {"exp", "[2,3] std 3", inputs({normal({2, 3}, 3.0)}), [](const V& x) { return exp(x[0]); }},
      {"log", "[3,5,7] in [0.5,2]", inputs({positive({3, 5, 7})}), [](const V& x) { return log(x[0]); }},
      {"log", "[1]", inputs({positive({1})}), [](const V& x) { return log(x[0]); }},
      {"relu", "[3,5,7]", inputs({A}), [](const V& x) { return relu(x[0]); }},
      {"relu", "[64] std 0.01", inputs({normal({64}, 0.01)}), [](const V& x) { return relu(x[0]); }},
      // ---- reductions ----
      {"sum", "[3,5,7] all", inputs({A}), [](const V& x) { return sum(x[0]); }},
      {"sum", "[3,5,7] dims {0,2}", inputs({A}), [](const V& x) { return sum(x[0], {0, 2}); }},
      {"sum", "[3,5,7] dim {1} keepdim", inputs({A}), [](const V& x) { return sum(x[0], {1}, true); }},
      {"sum", "[3,5,7] dim {-1}", inputs({A}), [](const V& x) { return sum(x[0], {-1}); }},
      {"mean", "[3,5,7] all", inputs({A}), [](const V& x) { return mean(x[0]); }},
      {"mean", "[3,5,7] dims {0,2}", inputs({A}), [](const V& x) { return mean(x[0], {0, 2}); }},
      {"mean", "[3,5,7] dims {1,2} keepdim", inputs({A}), [](const V& x) { return mean(x[0], {1, 2}, true); }},
      {"sum_to", "[3,5,7] -> [5,1]", inputs({A}), [](const V& x) { return sum_to(x[0], {5, 1}); }},
      // ---- linear algebra ----
      {"matmul", "[3,5] x [5,7]", inputs({normal({3, 5}), normal({5, 7})}),
       [](const V& x) { return matmul(x[0], x[1]); }},
      {"matmul", "[1,4] x [4,1]", inputs({normal({1, 4}), normal({4, 1})}),
       [](const V& x) { return matmul(x[0], x[1]); }},
      {"matmul", "[7,1] x [1,6]", inputs({normal({7, 1}), normal({1, 6})}),
       [](const V& x) { return matmul(x[0], x[1]); }},
      {"matmul", "[5,6]^T x [5,3]", inputs({normal({5, 6}), normal({5, 3})}),
       [](const V& x) { return matmul(x[0].transpose(0, 1), x[1]); }},
      {"matmul", "[4,3] x [3,5] (non-contiguous leaves)", inputs({transposed({4, 3}), transposed({3, 5})}),
       [](const V& x) { return matmul(x[0], x[1]); }},
      {"linear", "[4,6] W[5,6] b[5]", inputs({normal({4, 6}), normal({5, 6}), normal({5})}),
       [](const V& x) { return linear(x[0], x[1], x[2]); }},
      {"linear", "[4,6] W[5,6] no bias", inputs({normal({4, 6}), normal({5, 6})}),
       [](const V& x) { return linear(x[0], x[1]); }},
      {"linear", "[1,3] W[2,3] b[2], x non-contiguous", inputs({transposed({1, 3}), normal({2, 3}), normal({2})}),
       [](const V& x) { return linear(x[0], x[1], x[2]); }},
      // ---- views (the output shares the input's storage) ----
      {"reshape", "[3,5,7] -> [7,15]", inputs({A}), [](const V& x) { return x[0].reshape({7, 15}); }},
      {"reshape", "[3,5,7]^T(0,2) -> [-1] (copy)", inputs({A}),
       [](const V& x) { return x[0].transpose(0, 2).reshape({-1}); }},
      {"view", "[3,5,7] -> [15,7]", inputs({A}), [](const V& x) { return x[0].view({15, 7}); }},
      {"flatten", "[3,5,7] dims 1..2, then all", inputs({A}),
       [](const V& x) { return x[0].flatten(1) * x[0].flatten().reshape({3, 35}); }},
      {"permute", "[3,5,7] -> {2,0,1}", inputs({A}), [](const V& x) { return x[0].permute({2, 0, 1}); }},
      {"transpose", "[3,5,7] (0,2)", inputs({A}), [](const V& x) { return x[0].transpose(0, 2); }},
      {"slice", "[3,5,7] dim 1 [1:5:2], dim 2 [0:7:3]", inputs({A}),
       [](const V& x) { return x[0].slice(1, 1, 5, 2).slice(2, 0, 7, 3); }},
      {"narrow", "[3,5,7] dim 0 from 1 len 2", inputs({A}), [](const V& x) { return x[0].narrow(0, 1, 2); }},
      {"clone", "[3,5,7]^T(1,2) .contiguous().clone()", inputs({A}),
       [](const V& x) { return x[0].transpose(1, 2).contiguous().clone(); }},
      // ---- strided inputs (transposed, sliced with an offset) into the other ops ----
      {"mul", "[3,5,7]^T(0,2) * [7,5,3] (strided view)", inputs({A, normal({7, 5, 3})}),
       [](const V& x) { return mul(x[0].transpose(0, 2), x[1]); }},
      {"exp", "[6,4] non-contiguous leaf", inputs({transposed({6, 4})}), [](const V& x) { return exp(x[0]); }},
      {"add", "[6,4] non-contig + [4]", inputs({transposed({6, 4}), normal({4})}),
       [](const V& x) { return add(x[0], x[1]); }},
      {"matmul", "[5,6][:,2:6] x [6,3][1:5] (offset views)", inputs({normal({5, 6}), normal({6, 3})}),
       [](const V& x) { return matmul(x[0].slice(1, 2, 6), x[1].slice(0, 1, 5)); }},
      {"conv2d", "[2,4,5,3].permute(0,3,1,2) * [3,3,3,3] p1", inputs({normal({2, 4, 5, 3}), normal({3, 3, 3, 3})}),
       [](const V& x) { return conv2d(x[0].permute({0, 3, 1, 2}), x[1], Tensor(), 1, 1); }},
      {"batch_norm", "train, input [4,3,2,5]^T(2,3)", inputs({normal({4, 3, 2, 5}), normal({3}), normal({3})}),
       [](const V& x) { return bn_train({x[0].transpose(2, 3), x[1], x[2]}); }},
      {"max_pool2d", "[1,2,6,5]^T(2,3) k3 s2 p1", inputs({normal({1, 2, 6, 5})}),
       [](const V& x) { return max_pool2d(x[0].transpose(2, 3), 3, 2, 1); }},
      {"cross_entropy", "[7,4]^T logits, smoothing 0.2", inputs({normal({7, 4}), labels(4, 7)}),
       [](const V& x) { return cross_entropy(x[0].transpose(0, 1), x[1], 0.2); }},
      // ---- convolution: x [3,5,7,5] ----
      {"conv2d", "[3,5,7,5] * [4,5,1,1] + b", inputs({normal({3, 5, 7, 5}), normal({4, 5, 1, 1}), normal({4})}),
       [](const V& x) { return conv(x, 1, 0); }},
      {"conv2d", "[3,5,7,5] * [4,5,1,1] s2, no bias", inputs({normal({3, 5, 7, 5}), normal({4, 5, 1, 1})}),
       [](const V& x) { return conv(x, 2, 0); }},
      {"conv2d", "[3,5,7,5] * [4,5,3,3] + b, p1", inputs({normal({3, 5, 7, 5}), normal({4, 5, 3, 3}), normal({4})}),
       [](const V& x) { return conv(x, 1, 1); }},
      {"conv2d", "[3,5,7,5] * [4,5,3,3] s2, no bias", inputs({normal({3, 5, 7, 5}), normal({4, 5, 3, 3})}),
       [](const V& x) { return conv(x, 2, 0); }},
      {"conv2d", "[3,5,7,5] * [3,5,3,3] + b, s2 p1",
       inputs({normal({3, 5, 7, 5}), normal({3, 5, 3, 3}), normal({3})}), [](const V& x) { return conv(x, 2, 1); }},
      {"conv2d", "[3,5,7,5] * [2,5,7,7] + b, s2 p3",
       inputs({normal({3, 5, 7, 5}), normal({2, 5, 7, 7}), normal({2})}), [](const V& x) { return conv(x, 2, 3); }},
      {"conv2d", "[3,5,7,5] * [2,5,7,7], p1", inputs({normal({3, 5, 7, 5}), normal({2, 5, 7, 7})}),
       [](const V& x) { return conv(x, 1, 1); }},
      {"conv2d", "[3,5,7,5] * [4,5,3,2] + b, s(2,1) p(1,0)",
       inputs({normal({3, 5, 7, 5}), normal({4, 5, 3, 2}), normal({4})}),
       [](const V& x) { return conv2d(x[0], x[1], x[2], Conv2dOptions{2, 1, 1, 0}); }},
      // ---- batch norm ----
      {"batch_norm", "train [3,5,7,5]", inputs({normal({3, 5, 7, 5}), normal({5}), normal({5})}), bn_train},
      {"batch_norm", "train [6,4]", inputs({normal({6, 4}), normal({4}), normal({4})}), bn_train},
      // Three values per channel: with two, each normalises to about +-1 whatever x is, so
      // the gradient to x is ~eps/|x1-x2|^3 and drowns in rounding noise (correctly so).
      {"batch_norm", "train [3,2,1,1]", inputs({normal({3, 2, 1, 1}), normal({2}), normal({2})}), bn_train},
      {"batch_norm", "eval [3,5,7,5], running stats const",
       inputs({normal({3, 5, 7, 5}), normal({5}), normal({5}), constant(normal({5})), constant(positive({5}))}),
       [](const V& x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], false); }},
      {"batch_norm", "eval [2,3,1,1], running stats const",
       inputs({normal({2, 3, 1, 1}), normal({3}), normal({3}), constant(normal({3})), constant(positive({3}))}),
       [](const V& x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], false); }},
      {"batch_norm", "eval [6,4], running stats const",
       inputs({normal({6, 4}), normal({4}), normal({4}), constant(normal({4})), constant(positive({4}))}),
       [](const V& x) { return batch_norm(x[0], x[1], x[2], x[3], x[4], false); }},
      // ---- fused batch norm + relu (ResNet's conv-BN-ReLU and BN-add-ReLU) ----
      {"batch_norm_relu", "train [3,5,7,5]", inputs({normal({3, 5, 7, 5}), normal({5}), normal({5})}),
       [](const V& x) { return batch_norm_relu(x[0], x[1], x[2], zeros({5}, F64), ones({5}, F64), true); }},
      {"batch_norm_relu", "train [6,4], x non-contiguous", inputs({transposed({4, 6}), normal({4}), normal({4})}),
       [](const V& x) { return batch_norm_relu(x[0].transpose(0, 1), x[1], x[2], Tensor(), Tensor(), true); }},
      {"batch_norm_relu", "eval [3,5,7,5], running stats const",
       inputs({normal({3, 5, 7, 5}), normal({5}), normal({5}), constant(normal({5})), constant(positive({5}))}),
       [](const V& x) { return batch_norm_relu(x[0], x[1], x[2], x[3], x[4], false); }},
      {"batch_norm_add_relu", "train [3,5,7,5] + identity",
       inputs({normal({3, 5, 7, 5}), normal({3, 5, 7, 5}), normal({5}), normal({5})}),
       [](const V& x) { return batch_norm_add_relu(x[0], x[1], x[2], x[3], Tensor(), Tensor(), true); }},
      {"batch_norm_add_relu", "train [3,2,1,1] + identity",
       inputs({normal({3, 2, 1, 1}), normal({3, 2, 1, 1}), normal({2}), normal({2})}),
       [](const V& x) { return batch_norm_add_relu(x[0], x[1], x[2], x[3], Tensor(), Tensor(), true); }},
      {"batch_norm_add_relu", "eval [2,3,4,5] + identity, running stats const",
       inputs({normal({2, 3, 4, 5}), normal({2, 3, 4, 5}), normal({3}), normal({3}), constant(normal({3})),
               constant(positive({3}))}),
       [](const V& x) { return batch_norm_add_relu(x[0], x[1], x[2], x[3], x[4], x[5], false); }},
      // ---- pooling ----
      {"max_pool2d", "[2,3,7,5] k3 s2 p1", inputs({normal({2, 3, 7, 5})}),
       [](const V& x) { return max_pool2d(x[0], 3, 2, 1); }},
      {"max_pool2d", "[2,3,6,4] k2 s2", inputs({normal({2, 3, 6, 4})}),
       [](const V& x) { return max_pool2d(x[0], 2, 2); }},
      {"max_pool2d", "[2,3,7,5] k2 s2 (drops edge)", inputs({normal({2, 3, 7, 5})}),
       [](const V& x) { return max_pool2d(x[0], 2, 2); }},
      {"max_pool2d", "[1,2,5,5] k3 s1 (overlapping)", inputs({normal({1, 2, 5, 5})}),
       [](const V& x) { return max_pool2d(x[0], 3, 1); }},
      {"adaptive_avg_pool2d_1x1", "[3,5,7,5]", inputs({normal({3, 5, 7, 5})}),
       [](const V& x) { return adaptive_avg_pool2d_1x1(x[0]); }},
      {"adaptive_avg_pool2d_1x1", "[2,3,1,1]", inputs({normal({2, 3, 1, 1})}),
       [](const V& x) { return adaptive_avg_pool2d_1x1(x[0]); }},
      // ---- dropout: the mask comes from a Generator re-seeded on every call ----
      {"dropout", "train p=0.3 [4,7]", inputs({normal({4, 7})}),
       [](const V& x) {
         Generator g(77);
         return dropout(x[0], 0.3, true, g);
       }},
      {"dropout", "train p=0.5 [2,3,5,5]", inputs({normal({2, 3, 5, 5})}),
       [](const V& x) {
         Generator g(78);
         return dropout(x[0], 0.5, true, g);
       }},
      {"dropout", "eval p=0.5 [4,7] (identity)", inputs({normal({4, 7})}),
       [](const V& x) { return dropout(x[0], 0.5, false); }},
      // ---- softmax and losses ----
      {"log_softmax", "[4,7]", inputs({normal({4, 7})}), [](const V& x) { return log_softmax(x[0]); }},
      {"log_softmax", "[1,10] dim -1", inputs({normal({1, 10})}), [](const V& x) { return log_softmax(x[0], -1); }},
      {"log_softmax", "[5,3] std 10", inputs({normal({5, 3}, 10.0)}), [](const V& x) { return log_softmax(x[0]); }},
      {"cross_entropy", "[5,7] labels[5]", inputs({normal({5, 7}), labels(5, 7)}),
       [](const V& x) { return cross_entropy(x[0], x[1]); }},
      {"cross_entropy", "[5,7] labels[5] smoothing 0.1", inputs({normal({5, 7}), labels(5, 7)}),
       [](const V& x) { return cross_entropy(x[0], x[1], 0.1); }},
      {"cross_entropy", "[1,2] smoothing 0.3", inputs({normal({1, 2}), labels(1, 2)}),
       [](const V& x) { return cross_entropy(x[0], x[1], 0.3); }},
      {"cross_entropy", "[6,4] std 4 smoothing 1.0", inputs({normal({6, 4}, 4.0), labels(6, 4)}),
       [](const V& x) { return cross_entropy(x[0], x[1], 1.0); }},
      // ---- a small network, every parameter checked ----
      // The image's gradient is ~1e-4 of the loss and reaches it through batch norm and a
      // log-sum-exp, whose rounding noise (~1e-15 in L) is then ~1e-5 of those slopes at
      // h = 1e-6. h = 1e-5 cuts the noise tenfold at a truncation error (h^2 f'''/6) still
      // below 1e-8; measured worst over 30 seeds: 1.3e-6, so the tolerance is 1e-5.
      {"composite", "conv-bn-relu-pool-gap-linear-CE [2,3,6,6]",
       inputs({normal({2, 3, 6, 6}), normal({4, 3, 3, 3}, 0.5), normal({4}), normal({4}), normal({3, 4}),
               normal({3}), labels(2, 3)}),
       small_net, 1e-5, 1e-5},
      // The same tolerance and step for the same reason.
      {"composite", "conv-bn_relu(fused)-pool3x3s2p1-gap-linear-CE [2,3,6,6]",
       inputs({normal({2, 3, 6, 6}), normal({4, 3, 3, 3}, 0.5), normal({4}), normal({4}), normal({3, 4}),
               normal({3}), labels(2, 3)}),
       small_net_fused, 1e-5, 1e-5},
  };
}

void print_row(const std::string& op, const std::string& shapes, const std::string& err, const std::string& redraws,
               const std::string& result) {
  std::printf("%-24s %-44s %-11s %-7s %s\n", op.c_str(), shapes.c_str(), err.c_str(), redraws.c_str(),
              result.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checks every differentiable op's backward against central differences in float64."};
  std::string filter;
  bool list = false, verbose = false;
  uint64_t seed = 1;
  app.add_option("--filter", filter, "only run ops whose name contains this substring");
  app.add_flag("--list", list, "list the cases and exit");
  app.add_option("--seed", seed, "seed for the inputs and the projection R")->capture_default_str();
  app.add_flag("--verbose", verbose, "print the error of every input and where the worst element is");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "gradcheck: %s\n\n%s", e.what(), app.help().c_str());
    return 2;
  }

  std::vector<Case> cases;
  for (Case& c : all_cases())
    if (c.op.find(filter) != std::string::npos) cases.push_back(std::move(c));
  if (cases.empty()) {
    std::fprintf(stderr, "gradcheck: no op matches --filter '%s' (see --list)\n", filter.c_str());
    return 2;
  }
  if (list) {
    for (const Case& c : cases) std::printf("%-24s %s\n", c.op.c_str(), c.shapes.c_str());
    return 0;
  }

  const auto start = std::chrono::steady_clock::now();
  int passed = 0, failed = 0;
  print_row("op", "shapes", "max rel err", "redraws", "result");
  for (const Case& c : cases) {
    GradcheckOptions opt;
    opt.seed = seed;
    opt.tolerance = c.tolerance;
    opt.step = c.step;
    GradcheckResult r;
    try {
      r = gradcheck(c.f, c.make, opt);
    } catch (const std::exception& e) {
      r.max_error = INFINITY;
      r.message = std::string("threw: ") + e.what();
    }
    char err[32];
    std::snprintf(err, sizeof err, "%.2e", r.max_error);
    print_row(c.op, c.shapes, err, std::to_string(r.redraws), r.passed ? "PASS" : "FAIL");
    if (verbose) {
      for (size_t k = 0; k < r.input_errors.size(); ++k)
        if (r.input_errors[k] >= 0) std::printf("    input %zu: %.2e\n", k, r.input_errors[k]);
    }
    if (verbose || !r.passed) std::printf("    %s\n", r.message.c_str());
    (r.passed ? passed : failed)++;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%d passed, %d failed (%.2f s)\n", passed, failed, secs);
  return failed == 0 ? 0 : 1;
}
