#include "train/epoch_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace minidl {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = long(std::lround(s));
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

EpochProgress::EpochProgress(std::string label, int64_t total_batches, int64_t first_batch, bool enabled,
                             std::FILE* out, int interactive)
    : label_(std::move(label)),
      total_(total_batches),
      first_(first_batch),
      enabled_(enabled),
      interactive_(interactive < 0 ? isatty(fileno(out)) != 0 : interactive != 0),
      out_(out),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  next_report_ = first_ + std::max<int64_t>(1, total_ / 10);
}

EpochProgress::~EpochProgress() { finish(); }

std::string EpochProgress::render(const std::string& label, int64_t done, int64_t total, double loss,
                                  double accuracy, double ips, double eta) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s  batch %lld/%lld  loss %.4f  acc %.1f%%  %.1f img/s  ETA %s", label.c_str(),
                (long long)done, (long long)total, loss, 100 * accuracy, ips, format_duration(eta).c_str());
  return buf;
}

double EpochProgress::images_per_sec() const {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return s > 0 ? double(images_) / s : 0.0;
}

void EpochProgress::update(int64_t done, int64_t images, double loss, double accuracy) {
  images_ += images;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  const bool last = done >= total_;
  if (interactive_ ? (since_draw < 0.2 && !last) : (done < next_report_ && since_draw < 60 && !last)) return;
  const int64_t ran = done - first_;
  const double eta = ran > 0 ? elapsed / double(ran) * double(total_ - done) : NAN;
  const std::string line = render(label_, done, total_, loss, accuracy, images_per_sec(), eta);
  if (interactive_) {
    std::fprintf(out_, "\r%s\033[K", line.c_str());
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
    while (next_report_ <= done) next_report_ += std::max<int64_t>(1, total_ / 10);
  }
  std::fflush(out_);
  last_draw_ = now;
  last_len_ = line.size();
}

void EpochProgress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_ && interactive_ && last_len_ > 0) {
    std::fprintf(out_, "\r\033[K");  // erase: the epoch summary takes the line's place
    std::fflush(out_);
  }
}

}  // namespace minidl
