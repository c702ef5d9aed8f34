// LR schedules: the lr at chosen steps against values worked out from the formulas in
// layers/lr_schedule.h, group ratios, the optimizer actually using the scheduled lr, resume.
#include <cmath>

#include "layers/layers.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

// Two groups with lrs base and base/10 (a backbone at a tenth of the head's rate).
struct TwoGroups {
  explicit TwoGroups(double base) {
    Tensor a = zeros({2}), b = zeros({3});
    a.requires_grad_();
    b.requires_grad_();
    std::vector<ParamGroup> groups(2);
    groups[0].params = {a};
    groups[1].params = {b};
    groups[1].lr = base / 10;
    opt = std::make_unique<SGD>(groups, SGDOptions{.lr = base, .momentum = 0.9});
  }
  double lr(size_t g) const { return opt->param_groups()[g].lr; }
  std::unique_ptr<SGD> opt;
};

// Steps `s` until its counter reaches t.
void advance_to(LRSchedule& s, int64_t t) {
  while (s.step_count() < t) s.step();
}

}  // namespace

TEST_CASE("StepLR: lr = base * gamma^floor(t / step_size)") {
  TwoGroups g(0.1);
  StepLR s(*g.opt, 3, 0.5);
  CHECK(s.step_count() == 0);
  const std::vector<std::pair<int64_t, double>> expect = {{0, 0.1},  {1, 0.1},   {2, 0.1},   {3, 0.05},
                                                          {5, 0.05}, {6, 0.025}, {9, 0.0125}};
  for (auto [t, lr] : expect) {
    advance_to(s, t);
    CHECK_MESSAGE(g.lr(0) == doctest::Approx(lr).epsilon(1e-12), "t = ", t);
    CHECK_MESSAGE(g.lr(1) == doctest::Approx(lr / 10).epsilon(1e-12), "t = ", t);
  }
  CHECK(s.step_count() == 9);
  CHECK(s.last_lr() == std::vector<double>{g.lr(0), g.lr(1)});
}

TEST_CASE("WarmupCosineLR: linear warm-up from 0, cosine down to the floor") {
  // base 0.2, warm-up 4, total 14, floor 0.1 * base = 0.02.
  TwoGroups g(0.2);
  WarmupCosineLR s(*g.opt, 4, 14, 0.1);
  const std::vector<std::pair<int64_t, double>> expect = {
      {0, 0.0},   {1, 0.05},  {3, 0.15},  {4, 0.2},                  // warm-up: 0.2 * t / 4
      {6, 0.1828115294937453},                                          // 0.02 + 0.18 (1 + cos(0.2 pi)) / 2
      {9, 0.11},  {13, 0.024404913533436184}, {14, 0.02}, {20, 0.02}};  // midpoint, near the end, floor
  for (auto [t, lr] : expect) {
    advance_to(s, t);
    CHECK_MESSAGE(g.lr(0) == doctest::Approx(lr).epsilon(1e-12), "t = ", t);
    CHECK_MESSAGE(g.lr(1) == doctest::Approx(lr / 10).epsilon(1e-12), "t = ", t);
  }
  // Without warm-up it starts at the base lr.
  TwoGroups h(0.2);
  WarmupCosineLR plain(*h.opt, 0, 10);
  CHECK(h.lr(0) == 0.2);
  CHECK(plain.lr_at(5, 0) == doctest::Approx(0.1));
  CHECK(plain.lr_at(10, 1) == 0.0);
}

TEST_CASE("OneCycleLR follows torch's two-phase cosine formula") {
  // max 1.0, total 10, pct_start 0.3 -> phase 1 ends at step 2, phase 2 at step 9;
  // initial = 1/25 = 0.04, min = 0.04 / 1e4 = 4e-6.
  TwoGroups g(1.0);
  OneCycleLR s(*g.opt, 10);
  const std::vector<std::pair<int64_t, double>> expect = {
      {0, 0.04}, {1, 0.52}, {2, 1.0}, {3, 0.9504846320134737}, {6, 0.38874197806371075},
      {9, 4e-06}, {10, 0.04951936798652623}};  // torch allows t == total_steps (past the end of phase 2)
  for (auto [t, lr] : expect) {
    advance_to(s, t);
    CHECK_MESSAGE(g.lr(0) == doctest::Approx(lr).epsilon(1e-12), "t = ", t);
    CHECK_MESSAGE(g.lr(1) == doctest::Approx(lr / 10).epsilon(1e-12), "t = ", t);
  }
  // One step further is an error that leaves the counter and the lrs as they were.
  CHECK_ERROR_MENTIONS(s.step(), "OneCycleLR", "11", "total_steps = 10");
  CHECK(s.step_count() == 10);
  CHECK(g.lr(0) == doctest::Approx(0.04951936798652623));
}

TEST_CASE("OneCycleLR with explicit per-group max_lr and other factors") {
  TwoGroups g(1.0);
  OneCycleLR s(*g.opt, 10, 0.3, 10.0, 100.0, {0.5, 0.2});
  CHECK(g.lr(0) == doctest::Approx(0.05));  // 0.5 / 10
  CHECK(g.lr(1) == doctest::Approx(0.02));
  advance_to(s, 2);
  CHECK(g.lr(0) == doctest::Approx(0.5));
  CHECK(g.lr(1) == doctest::Approx(0.2));
  advance_to(s, 9);
  CHECK(g.lr(0) == doctest::Approx(0.0005));  // 0.05 / 100
  CHECK(g.lr(1) == doctest::Approx(0.0002));
  CHECK_ERROR_MENTIONS(OneCycleLR(*g.opt, 10, 0.3, 25, 1e4, {1.0}), "OneCycleLR", "1 max_lr", "2 param groups");
}

TEST_CASE("schedules scale from the groups' initial lr, not from their own output") {
  TwoGroups g(0.1);
  StepLR first(*g.opt, 1, 0.5);
  first.step();
  first.step();
  CHECK(g.lr(0) == doctest::Approx(0.025));
  // A second schedule on the same optimizer still starts from 0.1 and 0.01.
  StepLR second(*g.opt, 1, 0.1);
  CHECK(g.lr(0) == doctest::Approx(0.1));
  CHECK(g.lr(1) == doctest::Approx(0.01));
}

TEST_CASE("the optimizer steps with the scheduled lr") {
  Tensor p = zeros({1}, DType::Float64);
  p.requires_grad_();
  SGD opt({p}, {.lr = 1.0});
  StepLR s(opt, 1, 0.5);  // lr 1, 0.5, 0.25, ...
  for (int t = 0; t < 3; ++t) {
    p.set_grad(ones({1}, DType::Float64));
    opt.step();
    s.step();
  }
  CHECK(p.item() == doctest::Approx(-(1.0 + 0.5 + 0.25)));
}

TEST_CASE("set_step restores a schedule for resume") {
  TwoGroups a(1.0), b(1.0);
  OneCycleLR sa(*a.opt, 20);
  advance_to(sa, 7);
  OneCycleLR sb(*b.opt, 20);
  sb.set_step(sa.step_count());
  CHECK(sb.step_count() == 7);
  CHECK(b.lr(0) == a.lr(0));
  CHECK(b.lr(1) == a.lr(1));
  sa.step();
  sb.step();
  CHECK(b.lr(0) == a.lr(0));
  CHECK(sa.lr_at(8, 0) == a.lr(0));
  CHECK_ERROR_MENTIONS(sb.set_step(-1), "step", ">= 0");
}

TEST_CASE("schedule arguments are validated") {
  TwoGroups g(0.1);
  CHECK_ERROR_MENTIONS(StepLR(*g.opt, 0), "StepLR", "step_size");
  CHECK_ERROR_MENTIONS(StepLR(*g.opt, 2, 0.0), "StepLR", "gamma");
  CHECK_ERROR_MENTIONS(WarmupCosineLR(*g.opt, 10, 10), "WarmupCosineLR", "total_steps (10)", "warmup_steps (10)");
  CHECK_ERROR_MENTIONS(WarmupCosineLR(*g.opt, -1, 10), "WarmupCosineLR", "warmup_steps");
  CHECK_ERROR_MENTIONS(WarmupCosineLR(*g.opt, 1, 10, 1.5), "WarmupCosineLR", "final_lr_fraction");
  CHECK_ERROR_MENTIONS(OneCycleLR(*g.opt, 0), "OneCycleLR", "total_steps");
  CHECK_ERROR_MENTIONS(OneCycleLR(*g.opt, 10, 1.5), "OneCycleLR", "pct_start");
  CHECK_ERROR_MENTIONS(OneCycleLR(*g.opt, 10, 0.3, 0.0), "OneCycleLR", "div_factor");
}
