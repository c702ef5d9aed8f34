#include "layers/lr_schedule.h"

#include <cmath>
#include <numbers>

namespace minidl {

namespace {
// Half a cosine from a (pct = 0) down or up to b (pct = 1).
double cosine_anneal(double a, double b, double pct) { return b + (a - b) * (1.0 + std::cos(std::numbers::pi * pct)) / 2.0; }
}  // namespace

LRSchedule::LRSchedule(Optimizer& optimizer) : optimizer_(optimizer) {
  for (const auto& g : optimizer.param_groups()) reference_lr_.push_back(g.initial_lr);
}

void LRSchedule::set_step(int64_t t) {
  MINIDL_CHECK(t >= 0, "LR schedule: step must be >= 0, got ", t);
  auto& groups = optimizer_.param_groups();
  MINIDL_CHECK(groups.size() == reference_lr_.size(), "LR schedule: the optimizer has ", groups.size(),
               " param groups but the schedule was built for ", reference_lr_.size());
  // Compute everything first so a failing step leaves the counter and the lrs unchanged.
  std::vector<double> lrs;
  for (size_t i = 0; i < groups.size(); ++i) lrs.push_back(compute(t, reference_lr_[i]));
  for (size_t i = 0; i < groups.size(); ++i) groups[i].lr = lrs[i];
  t_ = t;
}

double LRSchedule::lr_at(int64_t t, size_t group) const {
  MINIDL_CHECK(group < reference_lr_.size(), "LR schedule: group ", group, " is out of range for ",
               reference_lr_.size(), " groups");
  MINIDL_CHECK(t >= 0, "LR schedule: step must be >= 0, got ", t);
  return compute(t, reference_lr_[group]);
}

std::vector<double> LRSchedule::last_lr() const {
  std::vector<double> out;
  for (const auto& g : optimizer_.param_groups()) out.push_back(g.lr);
  return out;
}

// ---- StepLR ----

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRSchedule(optimizer), step_size_(step_size), gamma_(gamma) {
  MINIDL_CHECK(step_size > 0, "StepLR: step_size must be > 0, got ", step_size);
  MINIDL_CHECK(gamma > 0, "StepLR: gamma must be > 0, got ", gamma);
  start();
}

double StepLR::compute(int64_t t, double base) const { return base * std::pow(gamma_, double(t / step_size_)); }

// ---- WarmupCosineLR ----

WarmupCosineLR::WarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps,
                               double final_lr_fraction)
    : LRSchedule(optimizer), warmup_(warmup_steps), total_(total_steps), final_fraction_(final_lr_fraction) {
  MINIDL_CHECK(warmup_steps >= 0, "WarmupCosineLR: warmup_steps must be >= 0, got ", warmup_steps);
  MINIDL_CHECK(total_steps > warmup_steps, "WarmupCosineLR: total_steps (", total_steps,
               ") must be greater than warmup_steps (", warmup_steps, ")");
  MINIDL_CHECK(final_lr_fraction >= 0 && final_lr_fraction <= 1,
               "WarmupCosineLR: final_lr_fraction must be in [0, 1], got ", final_lr_fraction);
  start();
}

double WarmupCosineLR::compute(int64_t t, double base) const {
  if (t < warmup_) return base * double(t) / double(warmup_);
  const double floor = final_fraction_ * base;
  if (t >= total_) return floor;
  const double pct = double(t - warmup_) / double(total_ - warmup_);
  return cosine_anneal(base, floor, pct);
}

// ---- OneCycleLR ----

namespace {
std::vector<double> checked_max_lr(const Optimizer& optimizer, std::vector<double> max_lr) {
  const size_t n = optimizer.param_groups().size();
  MINIDL_CHECK(max_lr.empty() || max_lr.size() == n, "OneCycleLR: got ", max_lr.size(), " max_lr values for ", n,
               " param groups (give one per group, or none to use each group's lr)");
  for (double v : max_lr) MINIDL_CHECK(std::isfinite(v) && v >= 0, "OneCycleLR: max_lr must be >= 0, got ", v);
  return max_lr;
}
}  // namespace

OneCycleLR::OneCycleLR(Optimizer& optimizer, int64_t total_steps, double pct_start, double div_factor,
                       double final_div_factor, std::vector<double> max_lr)
    : LRSchedule(optimizer), total_(total_steps), pct_start_(pct_start), div_(div_factor), final_div_(final_div_factor) {
  MINIDL_CHECK(total_steps > 0, "OneCycleLR: total_steps must be > 0, got ", total_steps);
  MINIDL_CHECK(pct_start >= 0 && pct_start <= 1, "OneCycleLR: pct_start must be in [0, 1], got ", pct_start);
  MINIDL_CHECK(div_factor > 0, "OneCycleLR: div_factor must be > 0, got ", div_factor);
  MINIDL_CHECK(final_div_factor > 0, "OneCycleLR: final_div_factor must be > 0, got ", final_div_factor);
  max_lr = checked_max_lr(optimizer, std::move(max_lr));
  if (!max_lr.empty()) reference_lr_ = max_lr;
  start();
}

double OneCycleLR::compute(int64_t t, double max_lr) const {
  MINIDL_CHECK(t <= total_, "OneCycleLR: stepped to ", t, ", past total_steps = ", total_,
               " (make total_steps the number of optimizer steps)");
  const double initial = max_lr / div_, min_lr = initial / final_div_;
  const double end1 = pct_start_ * double(total_) - 1.0, end2 = double(total_) - 1.0;
  double start_step, end_step, from, to;
  if (double(t) <= end1) {
    start_step = 0, end_step = end1, from = initial, to = max_lr;
  } else {
    start_step = end1, end_step = end2, from = max_lr, to = min_lr;
  }
  // A phase of zero length (torch divides by zero here): it is already at its end value.
  if (end_step == start_step) return to;
  return cosine_anneal(from, to, (double(t) - start_step) / (end_step - start_step));
}

}  // namespace minidl
