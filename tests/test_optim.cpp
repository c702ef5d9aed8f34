// SGD and AdamW against values worked out by hand from torch.optim's update rules, plus
// parameter groups, skipped parameters, the weight-decay split, state save/restore and
// option errors.
//
// Every numeric case starts from p0 = [1, -2], p1 = [0.5, 0.25, -0.75] and runs three
// steps with these gradients (step: p0 | p1):
//   1: [0.1, -0.3]  | [0.5, -1.0, 2.0]
//   2: [0.2, 0.4]   | [-0.25, 0.0, 1.5]
//   3: [-0.5, 0.1]  | [0.3, 0.7, -0.2]
// The expected values were computed in double precision by a 20-line Python loop over the
// formulas in layers/sgd.h and layers/adamw.h (which are torch's).
#include "layers/layers.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

const std::vector<std::vector<std::vector<double>>> kGrads = {
    {{0.1, -0.3}, {0.5, -1.0, 2.0}},
    {{0.2, 0.4}, {-0.25, 0.0, 1.5}},
    {{-0.5, 0.1}, {0.3, 0.7, -0.2}},
};

std::vector<Tensor> fresh_params(DType dt = DType::Float64) {
  Tensor p0 = from_vector<double>({1.0, -2.0}).to(dt);
  Tensor p1 = from_vector<double>({0.5, 0.25, -0.75}).to(dt);
  p0.requires_grad_();
  p1.requires_grad_();
  return {p0, p1};
}

void set_grads(std::vector<Tensor>& ps, size_t step) {
  for (size_t k = 0; k < ps.size(); ++k) ps[k].set_grad(from_vector<double>(kGrads[step][k]).to(ps[k].dtype()));
}

// Runs three steps of `opt` over `ps` and returns the final values.
std::vector<std::vector<double>> run3(Optimizer& opt, std::vector<Tensor>& ps) {
  for (size_t t = 0; t < 3; ++t) {
    set_grads(ps, t);
    opt.step();
  }
  return {ps[0].to_vector<double>(), ps[1].to_vector<double>()};
}

void check_close(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& want,
                 double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) CHECK_MESSAGE(max_rel_error(got[k], want[k]) < tol, "param ", k);
}

}  // namespace

TEST_CASE("SGD without momentum: p -= lr * g") {
  auto ps = fresh_params();
  SGD opt(ps, {.lr = 0.1});
  check_close(run3(opt, ps), {{1.02, -2.02}, {0.445, 0.28, -1.08}});
  CHECK(opt.state_dict().empty());  // no momentum, no state
}

TEST_CASE("SGD with momentum: the buffer starts as the first gradient") {
  auto ps = fresh_params();
  SGD opt(ps, {.lr = 0.1, .momentum = 0.9});
  check_close(run3(opt, ps), {{0.9849, -2.0047}, {0.382, 0.451, -1.557}});
  // After three steps buf = g3 + 0.9 (g2 + 0.9 g1).
  const double buf00 = -0.5 + 0.9 * (0.2 + 0.9 * 0.1);
  CHECK(opt.state(0).at("momentum_buffer").at({0}) == doctest::Approx(buf00));
}

TEST_CASE("SGD with momentum and dampening") {
  auto ps = fresh_params();
  SGD opt(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  check_close(run3(opt, ps), {{0.9789, -1.9617}, {0.37325, 0.486, -1.4245}});
}

TEST_CASE("SGD with Nesterov momentum") {
  auto ps = fresh_params();
  SGD opt(ps, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  check_close(run3(opt, ps), {{1.00641, -2.02423}, {0.3388, 0.4609, -1.8063}});
}

TEST_CASE("SGD with weight decay folds wd * p into the gradient") {
  auto ps = fresh_params();
  SGD opt(ps, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
  check_close(run3(opt, ps), {{0.929858, -1.894195}, {0.3558345, 0.43330475, -1.50620425}});
}

TEST_CASE("SGD in float32 agrees to float32 precision") {
  auto ps = fresh_params(DType::Float32);
  SGD opt(ps, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  check_close(run3(opt, ps), {{1.00641, -2.02423}, {0.3388, 0.4609, -1.8063}}, 1e-5);
}

TEST_CASE("AdamW with torch's defaults (betas 0.9/0.999, eps 1e-8, wd 1e-2)") {
  auto ps = fresh_params();
  AdamW opt(ps, {.lr = 0.1});
  check_close(run3(opt, ps), {{0.8286587958495812, -1.9407414969646974},
                              {0.32372879869815846, 0.42175023423853253, -1.0163242639868668}});
  CHECK(opt.state(0).at("step").item() == 3);
  CHECK(opt.state(0).at("step").dtype() == DType::Int64);
  // m after three steps = 0.1 g3 + 0.09 g2 + 0.081 g1.
  CHECK(opt.state(1).at("exp_avg").at({2}) == doctest::Approx(0.1 * -0.2 + 0.09 * 1.5 + 0.081 * 2.0));
  CHECK(opt.state(1).at("exp_avg_sq").at({1}) ==
        doctest::Approx(0.001 * 0.49 + 0.000999 * 0.0 + 0.000998001 * 1.0));
}

TEST_CASE("AdamW with other betas and a large weight decay") {
  auto ps = fresh_params();
  AdamW opt(ps, {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .weight_decay = 0.5});
  check_close(run3(opt, ps), {{0.9689630354202404, -1.9659283586661287},
                              {0.47582763707557696, 0.2620891869656575, -0.7648806758120948}});
}

TEST_CASE("AdamW in float32 agrees to float32 precision") {
  auto ps = fresh_params(DType::Float32);
  AdamW opt(ps, {.lr = 0.1});
  check_close(run3(opt, ps), {{0.8286587958495812, -1.9407414969646974},
                              {0.32372879869815846, 0.42175023423853253, -1.0163242639868668}},
              1e-5);
}

TEST_CASE("parameter groups: each group uses its own lr and weight decay") {
  // Grouped run == two separate single-group runs with the same hyper-parameters.
  auto ps = fresh_params();
  std::vector<ParamGroup> groups(2);
  groups[0].params = {ps[0]};  // lr and weight_decay unset: the optimizer's defaults
  groups[1].params = {ps[1]};
  groups[1].lr = 0.01;
  groups[1].weight_decay = 0.5;
  SGD grouped(groups, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
  CHECK(grouped.param_groups()[0].lr == 0.1);
  CHECK(grouped.param_groups()[0].weight_decay == 0.1);
  CHECK(grouped.param_groups()[1].lr == 0.01);
  CHECK(grouped.param_groups()[1].initial_lr == 0.01);
  auto got = run3(grouped, ps);
  // Group 0 is exactly the weight-decay case above.
  CHECK(max_rel_error(got[0], {0.929858, -1.894195}) < 1e-12);

  auto solo = fresh_params();
  SGD a({solo[0]}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
  SGD b({solo[1]}, {.lr = 0.01, .momentum = 0.9, .weight_decay = 0.5});
  for (size_t t = 0; t < 3; ++t) {
    set_grads(solo, t);
    a.step();
    b.step();
  }
  CHECK(got[1] == solo[1].to_vector<double>());
  CHECK(got[1] != std::vector<double>{0.3558345, 0.43330475, -1.50620425});  // not the group-0 settings

  // AdamW groups too: a group with lr 0 stays put (its decay factor 1 - lr * wd is 1 as well).
  auto qs = fresh_params();
  std::vector<ParamGroup> ag(2);
  ag[0].params = {qs[0]};
  ag[1].params = {qs[1]};
  ag[1].lr = 0.0;
  AdamW adam(ag, {.lr = 0.1});
  auto r = run3(adam, qs);
  CHECK(max_rel_error(r[0], {0.8286587958495812, -1.9407414969646974}) < 1e-12);
  CHECK(r[1] == std::vector<double>{0.5, 0.25, -0.75});
}

TEST_CASE("parameters without a gradient are skipped, state and all") {
  auto ps = fresh_params();
  AdamW opt(ps, {.lr = 0.1});
  ps[0].set_grad(from_vector<double>(kGrads[0][0]));
  opt.step();  // p1 has no grad
  CHECK(ps[1].to_vector<double>() == std::vector<double>{0.5, 0.25, -0.75});
  CHECK(opt.state(1).empty());
  CHECK(opt.state(0).at("step").item() == 1);

  // p1's first update later uses its own step count (t = 1) for bias correction:
  // the first Adam step moves each coordinate by lr * sign(g) (up to eps), after decay.
  ps[1].set_grad(from_vector<double>({1.0, -2.0, 0.5}));
  ps[0].zero_grad();
  const auto p0_before = ps[0].to_vector<double>();
  opt.step();
  CHECK(ps[0].to_vector<double>() == p0_before);
  CHECK(opt.state(0).at("step").item() == 1);
  CHECK(opt.state(1).at("step").item() == 1);
  const double decay = 1 - 0.1 * 0.01;
  CHECK(ps[1].at({0}) == doctest::Approx(0.5 * decay - 0.1).epsilon(1e-7));
  CHECK(ps[1].at({1}) == doctest::Approx(0.25 * decay + 0.1).epsilon(1e-7));

  opt.zero_grad();
  CHECK_FALSE(ps[0].grad().defined());
  CHECK_FALSE(ps[1].grad().defined());
  opt.step();  // nothing has a gradient: nothing moves
  CHECK(opt.state(0).at("step").item() == 1);
}

TEST_CASE("the optimizer updates a module's parameters in place") {
  Generator gen(1);
  Linear fc(3, 2, true, gen);
  SGD opt(fc.parameters(), {.lr = 0.5});
  Tensor x = from_vector<float>({1, 2, 3}, {1, 3});
  sum(fc(x)).backward();  // d/dW = x for each row, d/db = 1
  const double w00 = fc.weight.at({0, 0}), b1 = fc.bias.at({1});
  opt.step();
  CHECK(fc.weight.at({0, 0}) == doctest::Approx(w00 - 0.5 * 1.0));
  CHECK(fc.bias.at({1}) == doctest::Approx(b1 - 0.5));
  CHECK_FALSE(fc.weight.grad_fn());  // the step recorded no graph
}

TEST_CASE("weight_decay_groups: decay for kernels, none for biases and BN parameters") {
  Sequential net{std::make_shared<Conv2d>(1, 2, 3, 1, 0, false), std::make_shared<BatchNorm2d>(2),
                 std::make_shared<Flatten>(), std::make_shared<Linear>(8, 3)};
  auto groups = weight_decay_groups(net, 0.05, 0.2);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "decay");
  CHECK(groups[0].weight_decay == 0.05);
  CHECK(groups[0].lr == 0.2);
  REQUIRE(groups[0].params.size() == 2);
  CHECK(groups[0].params[0].same(std::dynamic_pointer_cast<Conv2d>(net[0])->weight));
  CHECK(groups[0].params[1].same(std::dynamic_pointer_cast<Linear>(net[3])->weight));
  CHECK(groups[1].name == "no_decay");
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[1].params.size() == 3);  // bn weight, bn bias, fc bias
  for (auto& p : groups[1].params) CHECK(p.dim() == 1);

  AdamW opt(groups, {.lr = 1e-3, .weight_decay = 0.3});
  CHECK(opt.param_groups()[0].weight_decay == 0.05);
  CHECK(opt.param_groups()[1].weight_decay == 0.0);
  CHECK(opt.param_groups()[1].lr == 0.2);
  // Without an lr the groups take the optimizer's.
  AdamW opt2(weight_decay_groups(net, 0.05), {.lr = 1e-3});
  CHECK(opt2.param_groups()[1].lr == 1e-3);
}

TEST_CASE("state_dict / load_state_dict resume AdamW and SGD exactly") {
  auto ref = fresh_params();
  AdamW straight(ref, {.lr = 0.1});
  auto expect = run3(straight, ref);

  // Two steps, save, rebuild from the saved values, one more step.
  auto ps = fresh_params();
  AdamW first(ps, {.lr = 0.1});
  for (size_t t = 0; t < 2; ++t) {
    set_grads(ps, t);
    first.step();
  }
  NamedTensors saved;
  for (auto& [k, v] : first.state_dict()) saved.emplace_back(k, v.clone());
  std::vector<std::string> names;
  for (auto& e : saved) names.push_back(e.first);
  CHECK(names == std::vector<std::string>{"0.exp_avg", "0.exp_avg_sq", "0.step", "1.exp_avg", "1.exp_avg_sq", "1.step"});

  auto resumed = fresh_params();
  for (size_t k = 0; k < 2; ++k) copy_(resumed[k], ps[k].detach());
  AdamW second(resumed, {.lr = 0.1});
  second.load_state_dict(saved);
  set_grads(resumed, 2);
  second.step();
  CHECK(resumed[0].to_vector<double>() == expect[0]);
  CHECK(resumed[1].to_vector<double>() == expect[1]);
  CHECK(saved[2].second.item() == 2);  // the loaded copy is private: our saved step is untouched

  // SGD's momentum buffers round-trip the same way.
  auto s = fresh_params();
  SGD sgd(s, {.lr = 0.1, .momentum = 0.9});
  set_grads(s, 0);
  sgd.step();
  auto s2 = fresh_params();
  SGD sgd2(s2, {.lr = 0.1, .momentum = 0.9});
  sgd2.load_state_dict(sgd.state_dict());
  CHECK(sgd2.state(1).at("momentum_buffer").to_vector<double>() == kGrads[0][1]);
}

TEST_CASE("load_state_dict is strict") {
  auto ps = fresh_params();
  AdamW opt(ps, {.lr = 0.1});
  CHECK_ERROR_MENTIONS(opt.load_state_dict({{"0.momentum_buffer", zeros({2}, DType::Float64)}}), "AdamW",
                       "'momentum_buffer'");
  CHECK_ERROR_MENTIONS(opt.load_state_dict({{"5.exp_avg", zeros({2}, DType::Float64)}}), "parameter 5", "only 2");
  CHECK_ERROR_MENTIONS(opt.load_state_dict({{"0.exp_avg", zeros({3}, DType::Float64)}}), "'0.exp_avg'", "[3]",
                       "[2]");
  CHECK_ERROR_MENTIONS(opt.load_state_dict({{"0.exp_avg", zeros({2})}}), "'0.exp_avg'", "float32", "float64");
  CHECK_ERROR_MENTIONS(opt.load_state_dict({{"0.step", zeros({1})}}), "'0.step'", "0-dim int64");
  CHECK_ERROR_MENTIONS(opt.load_state_dict({{"exp_avg", zeros({2})}}), "'exp_avg'", "<index>.<key>");
}

TEST_CASE("optimizer options are validated with clear errors") {
  auto ps = fresh_params();
  CHECK_ERROR_MENTIONS(SGD(ps, {.lr = -0.1}), "SGD", "lr", "-0.1");
  CHECK_ERROR_MENTIONS(SGD(ps, {.lr = 0.1, .momentum = -1}), "SGD", "momentum");
  CHECK_ERROR_MENTIONS(SGD(ps, {.lr = 0.1, .weight_decay = -1}), "SGD", "weight_decay");
  CHECK_ERROR_MENTIONS(SGD(ps, {.lr = 0.1, .nesterov = true}), "SGD", "nesterov", "momentum > 0");
  CHECK_ERROR_MENTIONS(SGD(ps, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}), "nesterov",
                       "dampening == 0");
  CHECK_ERROR_MENTIONS(AdamW(ps, {.beta1 = 1.0}), "AdamW", "beta1", "[0, 1)");
  CHECK_ERROR_MENTIONS(AdamW(ps, {.beta2 = -0.1}), "AdamW", "beta2");
  CHECK_ERROR_MENTIONS(AdamW(ps, {.eps = -1}), "AdamW", "eps");
  CHECK_ERROR_MENTIONS(AdamW(std::vector<Tensor>{}, {}), "AdamW", "empty parameter list");
  CHECK_ERROR_MENTIONS(SGD(std::vector<Tensor>{ps[0], ps[1], ps[0]}, {.lr = 0.1}), "SGD", "more than once");
  CHECK_ERROR_MENTIONS(SGD(std::vector<Tensor>{zeros({2}, DType::Int64)}, {.lr = 0.1}), "SGD", "int64");
  CHECK_ERROR_MENTIONS(SGD(std::vector<Tensor>{ps[0] * 2.0}, {.lr = 0.1}), "SGD", "not a leaf");

  std::vector<ParamGroup> groups(1);
  groups[0].params = ps;
  groups[0].lr = -1;
  CHECK_ERROR_MENTIONS(SGD(groups, {.lr = 0.1}), "SGD", "param group 0", "lr -1");

  // A bad lr set after construction (by hand or by a schedule) is caught at step().
  SGD ok(ps, {.lr = 0.1});
  ok.param_groups()[0].lr = -0.5;
  set_grads(ps, 0);
  CHECK_ERROR_MENTIONS(ok.step(), "SGD", "param group 0", "-0.5");
}
