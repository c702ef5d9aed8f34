// The learning-rate range test (Leslie Smith, "Cyclical Learning Rates", 2017; fastai's
// lr_find): train for a few dozen batches while the lr grows exponentially from start_lr to
// end_lr, recording an exponentially smoothed loss, and stop once the loss explodes. A good
// lr sits where the loss still falls steeply, about ten times below the minimum.
//
// The sweep itself knows nothing of models: `step(lr)` trains one batch at that lr and
// returns its loss, so the rule can be tested with a made-up loss curve.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace minidl {

struct LrFindOptions {
  double start_lr = 1e-7, end_lr = 10.0;
  int iters = 100;              // the sweep's length if the loss never explodes
  double beta = 0.98;           // smoothing: avg = beta * avg + (1 - beta) * loss, bias-corrected
  double diverge_factor = 4.0;  // stop when smoothed loss > factor * best smoothed loss
};

struct LrFindPoint {
  int iter = 0;
  double lr = 0, loss = 0, smoothed = 0;
};

struct LrFindResult {
  std::vector<LrFindPoint> points;
  bool diverged = false;       // stopped early on an exploding or non-finite loss
  double min_loss_lr = 0;      // lr of the lowest smoothed loss
  double steepest_lr = 0;      // lr of the steepest descent of the smoothed loss (before the minimum)
  double suggested_lr = 0;     // min_loss_lr / 10: the classic rule, less noisy than the steepest point
};

// lr_i = start * (end / start)^(i / (iters - 1)), i = 0 .. iters-1.
LrFindResult lr_range_test(const std::function<double(double lr)>& step, const LrFindOptions& options);

// Fills min_loss_lr, steepest_lr and suggested_lr from result.points (lr_range_test calls it).
void suggest_lr(LrFindResult& result);

// CSV "iter,lr,loss,smoothed_loss" and an SVG plot of the smoothed loss against log lr with
// the suggestion marked; both written through a temporary file.
void write_lr_find_csv(const std::string& path, const LrFindResult& result);
void write_lr_find_svg(const std::string& path, const LrFindResult& result);

}  // namespace minidl
