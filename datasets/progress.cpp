#include "datasets/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace minidl {

namespace {
constexpr int kBarWidth = 24;
constexpr double kRedrawSeconds = 0.1;
}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : ProgressBar(std::move(label), total, std::cerr, isatty(STDERR_FILENO) == 1, enabled) {}

ProgressBar::ProgressBar(std::string label, int64_t total, std::ostream& out, bool interactive, bool enabled)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 0)), out_(&out), interactive_(interactive),
      enabled_(enabled), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

std::string ProgressBar::render(int64_t done, double seconds) const {
  const double frac = total_ > 0 ? std::clamp(double(done) / double(total_), 0.0, 1.0) : 1.0;
  const int filled = int(frac * kBarWidth + 1e-9);
  std::string line = label_ + " [" + std::string(size_t(filled), '#') + std::string(size_t(kBarWidth - filled), '-') + "]";
  char buf[128];
  std::snprintf(buf, sizeof buf, " %lld/%lld %3d%% %.1fs", static_cast<long long>(done),
                static_cast<long long>(total_), int(frac * 100.0 + 1e-9), seconds);
  line += buf;
  if (seconds > 0 && done > 0) {
    std::snprintf(buf, sizeof buf, " %.0f/s", double(done) / seconds);
    line += buf;
  }
  if (!suffix_.empty()) line += "  " + suffix_;
  return line;
}

void ProgressBar::draw_locked(bool final_line) {
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  if (interactive_) {
    // "\x1b[K" clears the rest of the line, in case the previous draw was longer.
    *out_ << '\r' << render(done_, seconds) << "\x1b[K";
  } else if (final_line) {
    *out_ << render(done_, seconds);
  }
  if (final_line) *out_ << '\n';
  out_->flush();
  last_draw_ = now;
}

void ProgressBar::update(int64_t done) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  done_ = done;
  maybe_draw_locked();
}

void ProgressBar::add(int64_t n) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  maybe_draw_locked();
}

// Redraws on a terminal, at most every kRedrawSeconds (and always at 100%).
void ProgressBar::maybe_draw_locked() {
  if (finished_ || !interactive_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() >= kRedrawSeconds || done_ >= total_)
    draw_locked(false);
}

void ProgressBar::set_suffix(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  suffix_ = text;
}

void ProgressBar::finish() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  draw_locked(true);
}

}  // namespace minidl
