// Inference's fused conv -> eval batch norm [-> + identity] [-> relu] (cpu::ConvEpilogue,
// conv2d_bn_eval, layers/conv_bn.h) against the separate ops, which it must match bit for
// bit: the kernel under every lowering (per sample, batched in chunks, implicit GEMM or
// column matrix), float and double, 1 and 2 threads; the op's checks; a whole ResNet18 and
// ResNet50 in eval mode with grad mode off (fused) and on (separate ops).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "layers/conv_bn.h"
#include "models/resnet.h"
#include "tensor/factory.h"
#include "tensor/parallel.h"
#include "tensor/random.h"
#include "test_util.h"

using namespace minidl;
using cpu::ConvGeom;
using cpu::ConvLowering;
using cpu::ConvPlan;

namespace {

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// A conv and the eval batch norm after it, with statistics far from 0 / 1 so that the
// affine form matters, and a residual.
template <class T>
struct ConvBnCase {
  ConvGeom g;
  std::vector<T> x, w, b, gamma, beta, mean, var, residual;
  ConvBnCase(const ConvGeom& geom, uint64_t seed)
      : g(geom),
        x(testing::random_values<T>(size_t(g.N * g.C * g.H * g.W), seed)),
        w(testing::random_values<T>(size_t(g.O * g.col_rows()), seed + 1)),
        b(testing::random_values<T>(size_t(g.O), seed + 2)),
        gamma(testing::random_values<T>(size_t(g.O), seed + 3, -2, 2)),
        beta(testing::random_values<T>(size_t(g.O), seed + 4)),
        mean(testing::random_values<T>(size_t(g.O), seed + 5, -3, 3)),
        var(testing::random_values<T>(size_t(g.O), seed + 6, 0.05, 4)),
        residual(testing::random_values<T>(size_t(g.N * g.O * g.col_cols()), seed + 7)) {}

  // conv (under the plan), then batchnorm_forward_eval: the unfused reference.
  std::vector<T> separate(const ConvPlan& plan, bool with_residual, bool relu) const {
    std::vector<T> y(residual.size(), std::numeric_limits<T>::quiet_NaN()), out(residual.size());
    cpu::conv2d_forward_planned<T>(g, plan, x.data(), w.data(), b.data(), y.data());
    cpu::batchnorm_forward_eval<T>(y.data(), gamma.data(), beta.data(), mean.data(), var.data(), g.N, g.O,
                                   g.col_cols(), 1e-5, out.data(), with_residual ? residual.data() : nullptr, relu);
    return out;
  }
  std::vector<T> fused(const ConvPlan& plan, bool with_residual, bool relu) const {
    std::vector<T> scale(size_t(g.O)), shift(size_t(g.O));
    for (int64_t o = 0; o < g.O; ++o) cpu::eval_scale_shift(gamma[o], beta[o], mean[o], var[o], 1e-5, scale[o], shift[o]);
    const cpu::ConvEpilogue<T> ep{scale.data(), shift.data(), with_residual ? residual.data() : nullptr, relu};
    std::vector<T> y(residual.size(), std::numeric_limits<T>::quiet_NaN());
    cpu::conv2d_forward_planned<T>(g, plan, x.data(), w.data(), b.data(), y.data(), &ep);
    return y;
  }
};

// Every plan the forward can run: per sample (implicit where allowed), batched in chunks of
// 2 (several chunks and a smaller last one for N = 5) and of N, each implicit or not.
std::vector<ConvPlan> forward_plans(const ConvGeom& g) {
  std::vector<ConvPlan> plans;
  for (bool implicit : {false, true}) {
    plans.push_back({ConvLowering::PerSample, 1, implicit});
    plans.push_back({ConvLowering::Batched, 2, implicit});
    plans.push_back({ConvLowering::Batched, g.N, implicit});
  }
  plans.push_back(cpu::plan_conv(g, cpu::ConvPass::Forward, 4));
  return plans;
}

template <class T>
void check_every_plan(const ConvGeom& g, uint64_t seed) {
  const ConvBnCase<T> c(g, seed);
  for (const ConvPlan& plan : forward_plans(g))
    for (bool with_residual : {false, true})
      for (bool relu : {false, true})
        for (int threads : {1, 2}) {
          CAPTURE(int(plan.lowering));
          CAPTURE(plan.chunk);
          CAPTURE(plan.implicit);
          CAPTURE(with_residual);
          CAPTURE(relu);
          CAPTURE(threads);
          ThreadCountGuard t(threads);
          CHECK(same_bits(c.fused(plan, with_residual, relu), c.separate(plan, with_residual, relu)));
        }
}

const ConvGeom kGeoms[] = {
    cpu::make_conv_geom(5, 7, 9, 11, 13, 3, 3, 1, 1, 1, 1),   // P = 99, awkward everything
    cpu::make_conv_geom(5, 6, 8, 8, 9, 3, 3, 2, 2, 1, 1),     // stride 2, P = 16
    cpu::make_conv_geom(5, 16, 2, 2, 24, 3, 3, 1, 1, 1, 1),   // P = 4 (ResNet's last stage)
    cpu::make_conv_geom(5, 19, 5, 3, 21, 1, 1, 1, 1, 0, 0),   // pointwise, P = 15
    cpu::make_conv_geom(5, 10, 8, 7, 33, 1, 1, 2, 2, 0, 0),   // 1x1/2 downsample
    cpu::make_conv_geom(1, 3, 19, 21, 8, 7, 7, 2, 2, 3, 3),   // the stem's 7x7/2, one sample
};

// Through the ops: x, weight and the batch norm's tensors, requiring grad as a model's do.
struct OpCase {
  Tensor x, w, gamma, beta, mean, var, identity;
  Conv2dOptions opt{2, 2, 1, 1};
  explicit OpCase(uint64_t seed) {
    Generator g(seed);
    x = rand({3, 5, 9, 7}, -1, 1, DType::Float32, g);
    w = rand({6, 5, 3, 3}, -1, 1, DType::Float32, g).requires_grad_();
    gamma = rand({6}, -2, 2, DType::Float32, g).requires_grad_();
    beta = rand({6}, -1, 1, DType::Float32, g).requires_grad_();
    mean = rand({6}, -3, 3, DType::Float32, g);
    var = rand({6}, 0.05, 4, DType::Float32, g);
    identity = rand({3, 6, 5, 4}, -1, 1, DType::Float32, g);
  }
  Tensor fused(bool with_identity, bool relu) const {
    return conv2d_bn_eval(x, w, Tensor(), opt, gamma, beta, mean, var, 1e-5, with_identity ? identity : Tensor(), relu);
  }
  Tensor separate(bool with_identity, bool relu) const {
    Tensor y = conv2d(x, w, Tensor(), opt);
    if (with_identity) return batch_norm_add_relu(y, identity, gamma, beta, mean, var, false);
    return relu ? batch_norm_relu(y, gamma, beta, mean, var, false) : batch_norm(y, gamma, beta, mean, var, false);
  }
};

// Batch norm parameters and statistics of every BatchNorm2d drawn at random, so that the
// eval affine form is far from the identity a fresh model has.
void randomise_batch_norms(Module& m, uint64_t seed) {
  Generator g(seed);
  NoGradGuard no_grad;
  for (auto& [name, t] : m.named_parameters())
    if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos) {
      Tensor v = rand(t.shape(), -1.5, 1.5, t.dtype(), g);
      copy_(t, v);
    }
  for (auto& [name, t] : m.named_buffers())
    if (name.find("running_mean") != std::string::npos) copy_(t, rand(t.shape(), -0.5, 0.5, t.dtype(), g));
    else if (name.find("running_var") != std::string::npos) copy_(t, rand(t.shape(), 0.3, 3, t.dtype(), g));
}

}  // namespace

TEST_CASE("conv epilogue: the fused eval batch norm gives the separate ops' bits under every lowering") {
  uint64_t seed = 100;
  for (const ConvGeom& g : kGeoms) {
    CAPTURE(g.N);
    CAPTURE(g.C);
    CAPTURE(g.H);
    CAPTURE(g.KH);
    CAPTURE(g.SH);
    check_every_plan<float>(g, seed += 10);
    check_every_plan<double>(g, seed += 10);
  }
}

TEST_CASE("conv2d_bn_eval equals conv2d then the eval batch norm op, bit for bit") {
  const OpCase c(7);
  NoGradGuard no_grad;  // the parameters require grad, as a model's do
  for (bool with_identity : {false, true})
    for (bool relu : {false, true}) {
      if (with_identity && !relu) continue;  // the separate ops have no add-without-relu form
      CAPTURE(with_identity);
      CAPTURE(relu);
      Tensor got = c.fused(with_identity, relu), want = c.separate(with_identity, relu);
      CHECK(got.shape() == want.shape());
      CHECK(got.to_vector<float>() == want.to_vector<float>());
    }
}

TEST_CASE("conv2d_bn_eval refuses what it cannot do, naming the problem") {
  const OpCase c(8);
  // Grad mode on and a parameter requiring grad: the fused op records no graph.
  CHECK_ERROR_MENTIONS(c.fused(false, true), "conv2d_bn_eval", "requires grad");
  NoGradGuard no_grad;
  CHECK_ERROR_MENTIONS(conv2d_bn_eval(c.x, c.w, Tensor(), c.opt, c.gamma.slice(0, 0, 5), c.beta, c.mean, c.var, 1e-5,
                                      Tensor(), true),
                       "conv2d_bn_eval", "batch norm weight", "[5]", "[6]");
  CHECK_ERROR_MENTIONS(conv2d_bn_eval(c.x, c.w, Tensor(), c.opt, c.gamma, c.beta, c.mean, c.var, 1e-5,
                                      zeros({3, 6, 4, 4}), true),
                       "conv2d_bn_eval", "identity", "[3, 6, 4, 4]", "[3, 6, 5, 4]");
  CHECK_ERROR_MENTIONS(conv2d_bn_eval(c.x, c.w.slice(1, 0, 4), Tensor(), c.opt, c.gamma, c.beta, c.mean, c.var, 1e-5,
                                      Tensor(), true),
                       "conv2d_bn_eval", "5 channels", "expects 4");
  CHECK_ERROR_MENTIONS(conv2d_bn_eval(c.x, c.w, Tensor(), c.opt, c.gamma, c.beta, Tensor(), c.var, 1e-5, Tensor(), true),
                       "conv2d_bn_eval", "running_mean", "required");
  CHECK_ERROR_MENTIONS(conv2d_bn_eval(c.x, c.w, Tensor(), c.opt, c.gamma, c.beta, c.mean, c.var, 0.0, Tensor(), true),
                       "conv2d_bn_eval", "eps");
}

TEST_CASE("ResNet18 and ResNet50 in eval mode: fused inference (grad mode off) gives the separate ops' logits") {
  for (const char* arch : {"resnet18", "resnet50"}) {
    CAPTURE(arch);
    Generator gen(31);
    auto net = make_resnet(arch, 10, gen);
    randomise_batch_norms(*net, 32);
    net->eval();
    Generator xg(33);
    const Tensor x = rand({3, 3, 32, 32}, -1, 1, DType::Float32, xg);
    // Grad mode on: the parameters require grad, so every conv_bn takes the separate ops.
    CHECK_FALSE(conv_bn_fuses(*net->conv1, *net->bn1, x));
    const std::vector<float> separate = (*net)(x).to_vector<float>();
    NoGradGuard no_grad;
    CHECK(conv_bn_fuses(*net->conv1, *net->bn1, x));
    const std::vector<float> fused = (*net)(x).to_vector<float>();
    CHECK(same_bits(fused, separate));
    for (float v : fused) CHECK(std::isfinite(v));
    net->train();  // training mode never fuses
    CHECK_FALSE(conv_bn_fuses(*net->conv1, *net->bn1, x));
  }
}
