#include "train/lr_finder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tensor/error.h"
#include "train/svg_chart.h"
#include "train/text_io.h"

namespace minidl {

LrFindResult lr_range_test(const std::function<double(double lr)>& step, const LrFindOptions& o) {
  MINIDL_CHECK(o.start_lr > 0 && o.end_lr > o.start_lr, "lr finder: need 0 < start_lr < end_lr, got ", o.start_lr,
               " and ", o.end_lr);
  MINIDL_CHECK(o.iters >= 2, "lr finder: need at least 2 iterations, got ", o.iters);
  LrFindResult r;
  double avg = 0, best = INFINITY;
  for (int i = 0; i < o.iters; ++i) {
    const double lr = o.start_lr * std::pow(o.end_lr / o.start_lr, double(i) / double(o.iters - 1));
    const double loss = step(lr);
    if (!std::isfinite(loss)) {  // nothing to smooth: the sweep is over
      r.diverged = true;
      break;
    }
    avg = o.beta * avg + (1 - o.beta) * loss;
    const double smoothed = avg / (1 - std::pow(o.beta, i + 1));
    r.points.push_back({i, lr, loss, smoothed});
    best = std::min(best, smoothed);
    if (i > 0 && smoothed > o.diverge_factor * best) {
      r.diverged = true;
      break;
    }
  }
  MINIDL_CHECK(!r.points.empty(), "lr finder: the loss was not finite even at lr ", o.start_lr,
               "; check the data and the model");
  suggest_lr(r);
  return r;
}

void suggest_lr(LrFindResult& r) {
  const auto& p = r.points;
  if (p.empty()) return;
  size_t best = 0;
  for (size_t i = 1; i < p.size(); ++i)
    if (p[i].smoothed < p[best].smoothed) best = i;
  r.min_loss_lr = p[best].lr;
  r.suggested_lr = p[best].lr / 10;
  // Slope of the smoothed loss per unit log(lr), by central differences, up to the minimum.
  r.steepest_lr = p[0].lr;
  double steepest = INFINITY;
  for (size_t i = 1; i + 1 < p.size() && i <= best; ++i) {
    const double slope = (p[i + 1].smoothed - p[i - 1].smoothed) / std::log(p[i + 1].lr / p[i - 1].lr);
    if (slope < steepest) {
      steepest = slope;
      r.steepest_lr = p[i].lr;
    }
  }
}

void write_lr_find_csv(const std::string& path, const LrFindResult& r) {
  std::string text = "iter,lr,loss,smoothed_loss\n";
  char buf[128];
  for (const auto& p : r.points) {
    std::snprintf(buf, sizeof buf, "%d,%.6e,%.6f,%.6f\n", p.iter, p.lr, p.loss, p.smoothed);
    text += buf;
  }
  write_text_atomic(path, text);
}

void write_lr_find_svg(const std::string& path, const LrFindResult& r) {
  ChartSeries raw{"loss", {}, {}, "#c7c7c7"}, smooth{"smoothed loss", {}, {}, "#1f77b4"};
  double lowest = INFINITY;
  for (const auto& p : r.points) lowest = std::min(lowest, p.smoothed);
  for (const auto& p : r.points) {
    raw.x.push_back(p.lr);
    // A raw spike far above the curve would squash it flat; such points are left out.
    raw.y.push_back(p.loss <= 4 * lowest ? p.loss : NAN);
    smooth.x.push_back(p.lr);
    smooth.y.push_back(p.smoothed);
  }
  char label[64];
  std::snprintf(label, sizeof label, "suggested %.2e", r.suggested_lr);
  ChartOptions o;
  o.title = "Learning-rate range test";
  o.x_label = "learning rate (log scale)";
  o.y_label = "training loss";
  o.log_x = true;
  o.has_marker = r.suggested_lr > 0;
  o.marker_x = r.suggested_lr;
  o.marker_label = label;
  write_text_atomic(path, line_chart_svg({raw, smooth}, o));
}

}  // namespace minidl
