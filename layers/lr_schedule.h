// Learning-rate schedules. A schedule owns a step counter t (torch's last_epoch) and sets
// every param group's lr from a formula of t and that group's own reference lr, so groups
// with different lrs (a backbone at a tenth of the head's rate) keep their ratio throughout.
//
// Protocol, as in torch.optim.lr_scheduler: constructing a schedule sets lr(0) at once;
// each step() advances t by one and sets lr(t). The usual loop is
//   optimizer.step(); schedule.step();
// so optimizer step k (counting from 0) runs with lr(k). For resume, set_step(t) restores
// the counter and the lrs together.
#pragma once
#include <vector>

#include "layers/optim.h"

namespace minidl {

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  LRSchedule(const LRSchedule&) = delete;
  LRSchedule& operator=(const LRSchedule&) = delete;

  void step() { set_step(t_ + 1); }
  // Moves the counter to t (>= 0) and sets every group's lr to lr(t).
  void set_step(int64_t t);
  int64_t step_count() const { return t_; }
  // The lr group i gets at step t, without changing anything.
  double lr_at(int64_t t, size_t group) const;
  // Each group's current lr.
  std::vector<double> last_lr() const;

 protected:
  // Reference lr per group: the group's initial_lr (the lr it was created with).
  explicit LRSchedule(Optimizer& optimizer);
  // Call at the end of a subclass constructor, once the formula's parameters are set.
  void start() { set_step(0); }
  virtual double compute(int64_t t, double reference_lr) const = 0;

  Optimizer& optimizer_;
  std::vector<double> reference_lr_;

 private:
  int64_t t_ = 0;
};

// lr(t) = base * gamma^floor(t / step_size)   (torch's StepLR)
class StepLR : public LRSchedule {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  double compute(int64_t t, double base) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// Linear warm-up, then cosine decay to a floor (final_lr_fraction * base):
//   t <  W:       lr = base * t / W                       (starts at 0, as Hugging Face's
//                                                           get_cosine_schedule_with_warmup)
//   W <= t <= T:  p = (t - W) / (T - W)
//                 lr = floor + (base - floor) * (1 + cos(pi * p)) / 2
//   t >  T:       lr = floor
// W = warmup_steps (0 for none), T = total_steps > W. The floor is relative so it also
// keeps the groups' ratio.
class WarmupCosineLR : public LRSchedule {
 public:
  WarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double final_lr_fraction = 0.0);

 protected:
  double compute(int64_t t, double base) const override;

 private:
  int64_t warmup_, total_;
  double final_fraction_;
};

// torch.optim.lr_scheduler.OneCycleLR's lr (two phases, cosine annealing). Per group, with
// max = max_lr (the group's initial lr unless given explicitly, one per group):
//   initial = max / div_factor,  min = initial / final_div_factor
//   phase 1: steps 0 .. e1, e1 = pct_start * total_steps - 1 (a real number): initial -> max
//   phase 2: steps e1 .. e2, e2 = total_steps - 1:                               max -> min
//   within a phase from step s to e, going a -> b:
//     pct = (t - s) / (e - s),  lr = b + (a - b) * (1 + cos(pi * pct)) / 2
// t runs from 0 to total_steps (torch allows one step past the end; further is an error).
// Momentum / beta1 cycling (torch's cycle_momentum) is not implemented: momentum stays
// as the optimizer was configured.
class OneCycleLR : public LRSchedule {
 public:
  OneCycleLR(Optimizer& optimizer, int64_t total_steps, double pct_start = 0.3, double div_factor = 25.0,
             double final_div_factor = 1e4, std::vector<double> max_lr = {});

 protected:
  double compute(int64_t t, double max_lr) const override;

 private:
  int64_t total_;
  double pct_start_, div_, final_div_;
};

}  // namespace minidl
