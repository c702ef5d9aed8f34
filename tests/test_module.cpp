// Module system and layers: names, state_dict order, modes, buffers, init statistics, errors.
#include <cmath>

#include "autograd/grad_mode.h"
#include "layers/layers.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

std::vector<std::string> keys(const NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& e : named) out.push_back(e.first);
  return out;
}

// A miniature of torchvision's BasicBlock: conv1, bn1, conv2, bn2.
struct Block : Module {
  explicit Block(int64_t c, Generator& gen) : Module("Block") {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(c, c, 3, 1, 1, false, gen));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(c));
    conv2 = register_module("conv2", std::make_shared<Conv2d>(c, c, 3, 1, 1, false, gen));
    bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(c));
  }
  Tensor forward(const Tensor& x) override { return relu(bn2->forward(conv2->forward(relu(bn1->forward(conv1->forward(x)))))) + x; }
  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
};

// conv1, bn1, layer1 = [Block, Block], fc: the top of a ResNet.
struct TinyNet : Module {
  explicit TinyNet(Generator& gen) : Module("TinyNet") {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(3, 4, 3, 1, 1, false, gen));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(4));
    layer1 = register_module("layer1", std::make_shared<Sequential>());
    layer1->push_back(std::make_shared<Block>(4, gen));
    layer1->push_back(std::make_shared<Block>(4, gen));
    pool = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>());
    fc = register_module("fc", std::make_shared<Linear>(4, 3, true, gen));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = layer1->forward(relu(bn1->forward(conv1->forward(x))));
    return fc->forward(pool->forward(h).flatten(1));
  }
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Sequential> layer1;
  std::shared_ptr<AdaptiveAvgPool2d> pool;
  std::shared_ptr<Linear> fc;
};

std::vector<std::string> block_keys(const std::string& p) {
  std::vector<std::string> out{p + "conv1.weight"};
  for (const char* bn : {"bn1.", "bn2."}) {
    if (std::string(bn) == "bn2.") out.push_back(p + "conv2.weight");
    for (const char* k : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})
      out.push_back(p + bn + k);
  }
  return out;
}

double sample_mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

double sample_std(const std::vector<double>& v) {
  const double m = sample_mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace

TEST_CASE("state_dict of a nested model has torchvision's dotted names in torch's order") {
  Generator gen(1);
  TinyNet net(gen);
  std::vector<std::string> expected = {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                       "bn1.running_var", "bn1.num_batches_tracked"};
  for (const char* p : {"layer1.0.", "layer1.1."})
    for (auto& k : block_keys(p)) expected.push_back(k);
  expected.push_back("fc.weight");
  expected.push_back("fc.bias");
  CHECK(keys(net.state_dict()) == expected);

  // Parameters only: the same order with the buffers left out.
  std::vector<std::string> params;
  for (auto& k : expected)
    if (k.find("running_") == std::string::npos && k.find("num_batches") == std::string::npos) params.push_back(k);
  CHECK(keys(net.named_parameters()) == params);
  CHECK(net.parameters().size() == params.size());
  CHECK(net.named_buffers().size() == expected.size() - params.size());
  CHECK(keys(net.named_buffers())[0] == "bn1.running_mean");
  CHECK(keys(net.named_parameters(/*recurse=*/false)).empty());

  auto children = net.named_children();
  REQUIRE(children.size() == 5);
  CHECK(children[2].first == "layer1");
  CHECK(children[3].first == "avgpool");
}

TEST_CASE("a module's own tensors come before its children's, whatever the registration order") {
  Module m;
  m.register_module("child", std::make_shared<Linear>(2, 2));
  m.register_parameter("scale", ones({2}));
  m.register_buffer("count", zeros({1}));
  CHECK(keys(m.state_dict()) == std::vector<std::string>{"scale", "count", "child.weight", "child.bias"});
}

TEST_CASE("state_dict holds live handles shared with the member fields") {
  Generator gen(2);
  TinyNet net(gen);
  auto sd = net.state_dict();
  CHECK(sd[0].second.same(net.conv1->weight));
  CHECK(sd[5].second.same(net.bn1->num_batches_tracked));
  for (auto& [name, t] : net.named_parameters()) CHECK_MESSAGE(t.requires_grad(), name);
  for (auto& [name, t] : net.named_buffers()) CHECK_MESSAGE(!t.requires_grad(), name);
  // An in-place write through the state_dict handle is seen through the member field.
  Tensor w = sd.back().second;  // fc.bias
  w.data<float>()[1] = 42.0f;
  CHECK(net.fc->bias.at({1}) == 42.0);
}

TEST_CASE("BatchNorm2d: init, buffers, num_batches_tracked and running statistics") {
  BatchNorm2d bn(2);
  CHECK(bn.weight.to_vector<double>() == std::vector<double>{1, 1});
  CHECK(bn.bias.to_vector<double>() == std::vector<double>{0, 0});
  CHECK(bn.running_mean.to_vector<double>() == std::vector<double>{0, 0});
  CHECK(bn.running_var.to_vector<double>() == std::vector<double>{1, 1});
  CHECK(bn.num_batches_tracked.dtype() == DType::Int64);
  CHECK(bn.num_batches_tracked.dim() == 0);
  CHECK(bn.num_batches_tracked.item() == 0);

  // Channel 0 holds 1..8, channel 1 holds 10 everywhere: batch mean 4.5 and 10,
  // unbiased variance 6 and 0.
  // Input [N=2, C=2, 2, 2]: sample n's channel 0 is at nchw[n*8 .. n*8+3], its channel 1 right after.
  std::vector<float> nchw(16);
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 4; ++i) nchw[n * 8 + i] = float(n * 4 + i + 1), nchw[n * 8 + 4 + i] = 10.0f;
  Tensor input = from_vector(nchw, {2, 2, 2, 2});
  Tensor y = bn(input);
  CHECK(bn.num_batches_tracked.item() == 1);
  CHECK(bn.running_mean.at({0}) == doctest::Approx(0.1 * 4.5));
  CHECK(bn.running_mean.at({1}) == doctest::Approx(0.1 * 10));
  CHECK(bn.running_var.at({0}) == doctest::Approx(0.9 + 0.1 * 6.0));
  CHECK(bn.running_var.at({1}) == doctest::Approx(0.9));
  // Training output is normalised with the biased batch variance (5.25 for 1..8).
  CHECK(y.at({0, 0, 0, 0}) == doctest::Approx((1 - 4.5) / std::sqrt(5.25 + 1e-5)).epsilon(1e-5));
  bn(input);
  CHECK(bn.num_batches_tracked.item() == 2);

  // Eval: no counting, no running-stat update, normalised with the running statistics.
  bn.eval();
  const auto rm = bn.running_mean.to_vector<double>();
  Tensor ye = bn(input);
  CHECK(bn.num_batches_tracked.item() == 2);
  CHECK(bn.running_mean.to_vector<double>() == rm);
  const double expect = (1 - rm[0]) / std::sqrt(bn.running_var.at({0}) + 1e-5);
  CHECK(ye.at({0, 0, 0, 0}) == doctest::Approx(expect).epsilon(1e-5));

  CHECK_ERROR_MENTIONS(bn(zeros({2, 3, 2, 2})), "BatchNorm2d(2)", "3 channels");
  CHECK_ERROR_MENTIONS(bn(zeros({2, 2})), "BatchNorm2d(2)", "4-D");
}

TEST_CASE("train() and eval() reach every descendant") {
  Generator gen(3);
  TinyNet net(gen);
  auto all_modes = [&](bool want) {
    bool ok = net.is_training() == want && net.layer1->is_training() == want && net.fc->is_training() == want;
    for (size_t i = 0; i < net.layer1->size(); ++i) {
      auto block = std::dynamic_pointer_cast<Block>((*net.layer1)[i]);
      ok = ok && block->is_training() == want && block->bn1->is_training() == want && block->bn2->is_training() == want;
    }
    return ok;
  };
  CHECK(all_modes(true));
  net.eval();
  CHECK(all_modes(false));
  net.train();
  CHECK(all_modes(true));
  net.train(false);
  CHECK(all_modes(false));
}

TEST_CASE("Dropout: identity in eval, inverted dropout in training") {
  Generator gen(4);
  Dropout drop(0.25, gen);
  Tensor x = ones({100, 100});
  drop.eval();
  Tensor ye = drop(x);
  CHECK(ye.to_vector<double>() == x.to_vector<double>());

  drop.train();
  Tensor yt = drop(x);
  int64_t zeros_seen = 0, wrong_scale = 0;
  for (double v : yt.to_vector<double>()) {
    if (v == 0) ++zeros_seen;
    else if (std::abs(v - 1.0 / 0.75) > 1e-6) ++wrong_scale;
  }
  CHECK(wrong_scale == 0);
  CHECK(double(zeros_seen) / 1e4 == doctest::Approx(0.25).epsilon(0.1));
  CHECK_ERROR_MENTIONS(Dropout(1.0), "Dropout", "[0, 1)");
}

TEST_CASE("Conv2d init: weight std = sqrt(2 / fan_out), bias within 1/sqrt(fan_in)") {
  Generator gen(5);
  Conv2d conv(64, 128, 3, 1, 1, true, gen);
  const auto w = conv.weight.to_vector<double>();
  const double expected_std = std::sqrt(2.0 / (128 * 9));
  CHECK(std::abs(sample_mean(w)) < 5 * expected_std / std::sqrt(double(w.size())));
  CHECK(sample_std(w) == doctest::Approx(expected_std).epsilon(0.02));

  const auto b = conv.bias.to_vector<double>();
  const double bound = 1.0 / std::sqrt(64.0 * 9);
  double worst = 0;
  for (double v : b) worst = std::max(worst, std::abs(v));
  CHECK(worst <= bound);
  CHECK(worst > 0.8 * bound);
  CHECK_FALSE(Conv2d(3, 8, 3, 1, 0, false).bias.defined());
  CHECK(keys(Conv2d(3, 8, 3, 1, 0, false).state_dict()) == std::vector<std::string>{"weight"});
}

TEST_CASE("Linear init: weight and bias uniform in +-1/sqrt(in_features)") {
  Generator gen(6);
  Linear fc(400, 300, true, gen);
  const auto w = fc.weight.to_vector<double>();
  const double bound = 1.0 / 20.0;
  double worst = 0;
  for (double v : w) worst = std::max(worst, std::abs(v));
  CHECK(worst <= bound);
  CHECK(worst > 0.99 * bound);
  // U(-a, a) has std a / sqrt(3).
  CHECK(sample_std(w) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  for (double v : fc.bias.to_vector<double>()) CHECK(std::abs(v) <= bound);
}

TEST_CASE("the same seed builds the same model; another seed builds another") {
  Generator a(11), b(11), c(12);
  TinyNet na(a), nb(b), nc(c);
  auto sa = na.state_dict(), sb = nb.state_dict(), sc = nc.state_dict();
  bool any_diff = false;
  for (size_t i = 0; i < sa.size(); ++i) {
    CHECK_MESSAGE(sa[i].second.to_vector<double>() == sb[i].second.to_vector<double>(), sa[i].first);
    if (sa[i].first.ends_with("weight") && sa[i].first.find("bn") == std::string::npos)
      any_diff = any_diff || sa[i].second.to_vector<double>() != sc[i].second.to_vector<double>();
  }
  CHECK(any_diff);
  // Dropout masks follow their generator too.
  Generator d1(3), d2(3);
  Dropout p1(0.5, d1), p2(0.5, d2);
  CHECK(p1(ones({64})).to_vector<double>() == p2(ones({64})).to_vector<double>());
}

TEST_CASE("registration errors name the module, the name and the clash") {
  Module m("Custom");
  m.register_parameter("w", ones({2}));
  CHECK_ERROR_MENTIONS(m.register_parameter("w", ones({2})), "Custom", "'w'", "already a parameter");
  CHECK_ERROR_MENTIONS(m.register_buffer("w", ones({2})), "Custom", "'w'", "already a parameter");
  CHECK_ERROR_MENTIONS(m.register_module("w", std::make_shared<ReLU>()), "Custom", "'w'", "already a parameter");
  m.register_module("act", std::make_shared<ReLU>());
  CHECK_ERROR_MENTIONS(m.register_parameter("act", ones({2})), "'act'", "already a child module");
  CHECK_ERROR_MENTIONS(m.register_parameter("a.b", ones({2})), "Custom", "'a.b'", "'.'");
  CHECK_ERROR_MENTIONS(m.register_buffer("", ones({2})), "Custom", "empty");
  CHECK_ERROR_MENTIONS(m.register_parameter("i", zeros({2}, DType::Int64)), "'i'", "int64");
  Tensor leaf = ones({2});
  leaf.requires_grad_();
  CHECK_ERROR_MENTIONS(m.register_parameter("made", leaf * 2.0), "'made'", "leaves");
  CHECK_ERROR_MENTIONS(m.forward(ones({1})), "Custom", "forward");
}

TEST_CASE("layer shape checks and constructor errors are clear") {
  CHECK_ERROR_MENTIONS(Conv2d(3, 8, 3)(zeros({1, 4, 8, 8})), "Conv2d(3, 8", "[N, 3, H, W]", "[1, 4, 8, 8]");
  CHECK_ERROR_MENTIONS(Conv2d(3, 8, 0), "Conv2d", "kernel_size");
  CHECK_ERROR_MENTIONS(Linear(5, 2)(zeros({3, 4})), "Linear(5, 2)", "[..., 5]");
  CHECK_ERROR_MENTIONS(AdaptiveAvgPool2d(2), "AdaptiveAvgPool2d", "1x1", "2x2");
  CHECK_ERROR_MENTIONS(MaxPool2d(2, 2, 2), "MaxPool2d", "padding");
  CHECK_ERROR_MENTIONS(CrossEntropyLoss(1.5), "CrossEntropyLoss", "label_smoothing");
  CHECK_ERROR_MENTIONS(BatchNorm2d(4, 1e-5, 0.1, DType::Int64), "BatchNorm2d", "dtype");
}

TEST_CASE("layer forward shapes") {
  Tensor x = randn({2, 3, 9, 9});
  CHECK(Conv2d(3, 5, 3, 2, 1)(x).shape() == Shape{2, 5, 5, 5});
  CHECK(MaxPool2d(3)(x).shape() == Shape{2, 3, 3, 3});  // stride defaults to the kernel
  CHECK(MaxPool2d(3, 2, 1)(x).shape() == Shape{2, 3, 5, 5});
  CHECK(AdaptiveAvgPool2d()(x).shape() == Shape{2, 3, 1, 1});
  CHECK(Flatten()(x).shape() == Shape{2, 243});
  CHECK(Flatten(2)(x).shape() == Shape{2, 3, 81});
  CHECK(Linear(9, 4)(x).shape() == Shape{2, 3, 9, 4});
  CHECK(Identity()(x).same(x));
  Tensor r = ReLU()(from_vector<float>({-1, 2}));
  CHECK(r.to_vector<double>() == std::vector<double>{0, 2});
  Sequential empty;
  CHECK(empty(x).same(x));
}

TEST_CASE("Sequential names children 0, 1, ... and chains them") {
  auto seq = std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(3, 4), std::make_shared<ReLU>()});
  auto last = seq->push_back(std::make_shared<Linear>(4, 2));
  static_assert(std::is_same_v<decltype(last), std::shared_ptr<Linear>>);
  CHECK(keys(seq->state_dict()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(seq->named_children()[1].first == "1");
  CHECK_ERROR_MENTIONS((*seq)[3], "Sequential", "index 3");

  Tensor x = randn({5, 3});
  auto l0 = std::dynamic_pointer_cast<Linear>((*seq)[0]);
  Tensor expect = last->forward(relu(l0->forward(x)));
  CHECK(max_rel_error((*seq)(x), expect) == 0.0);
}

TEST_CASE("a module used twice contributes its parameters once") {
  auto shared = std::make_shared<Linear>(3, 3);
  Sequential seq{shared, std::make_shared<ReLU>(), shared};
  CHECK(seq.parameters().size() == 2);
  CHECK(seq.state_dict().size() == 4);  // state_dict keeps every name, like torch
}

TEST_CASE("zero_grad drops every gradient; to(float64) converts in place") {
  Generator gen(8);
  TinyNet net(gen);
  Tensor loss = mean(net(randn({2, 3, 6, 6}, DType::Float32, gen)));
  loss.backward();
  for (auto& [name, p] : net.named_parameters()) CHECK_MESSAGE(p.grad().defined(), name);
  net.zero_grad();
  for (auto& [name, p] : net.named_parameters()) CHECK_MESSAGE(!p.grad().defined(), name);

  const double w0 = net.fc->weight.at({0, 0});
  net.to(DType::Float64);
  CHECK(net.fc->weight.dtype() == DType::Float64);
  CHECK(net.fc->weight.at({0, 0}) == doctest::Approx(w0));
  CHECK(net.bn1->running_var.dtype() == DType::Float64);
  CHECK(net.bn1->num_batches_tracked.dtype() == DType::Int64);
  CHECK(net.fc->weight.requires_grad());
  Tensor out = net(randn({2, 3, 6, 6}, DType::Float64, gen));
  CHECK(out.dtype() == DType::Float64);
  CHECK(out.shape() == Shape{2, 3});
}

TEST_CASE("CrossEntropyLoss matches the formula, with and without label smoothing") {
  Tensor logits = from_vector<double>({2, 0, 0, 1}, {2, 2});
  Tensor labels = from_vector<int64_t>({0, 1});
  // log p for row 0: [-log(1+e^-2), -2-log(1+e^-2)]; row 1: [-1-log(1+e^-1), -log(1+e^-1)].
  const double a = std::log1p(std::exp(-2.0)), b = std::log1p(std::exp(-1.0));
  CHECK(CrossEntropyLoss()(logits, labels).item() == doctest::Approx((a + b) / 2));
  // Smoothing 0.2 over 2 classes: target 0.9 on the label, 0.1 on the other.
  const double row0 = 0.9 * a + 0.1 * (2 + a), row1 = 0.9 * b + 0.1 * (1 + b);
  CHECK(CrossEntropyLoss(0.2)(logits, labels).item() == doctest::Approx((row0 + row1) / 2));
}
