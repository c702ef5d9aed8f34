// The live line of a training epoch:
//
//   epoch 3/10  batch 120/506  loss 0.4123  acc 87.2%  312.4 img/s  ETA 1m12s
//
// On a terminal it is redrawn in place ('\r') at most five times a second and erased by
// finish(), so the epoch's summary line replaces it. Written to a file or a pipe, a full
// line is printed every tenth of the epoch (and at least once a minute), so logs show
// progress without thousands of lines.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace minidl {

class EpochProgress {
 public:
  // `first_batch` > 0 when the epoch resumes mid-way: rates and the ETA count only the
  // batches this process runs. `interactive` < 0: decide by isatty(out).
  EpochProgress(std::string label, int64_t total_batches, int64_t first_batch, bool enabled,
                std::FILE* out = stderr, int interactive = -1);
  ~EpochProgress();
  EpochProgress(const EpochProgress&) = delete;
  EpochProgress& operator=(const EpochProgress&) = delete;

  // After batch `done` (1-based count of batches finished in the epoch); loss and accuracy
  // are the epoch's running averages.
  void update(int64_t done, int64_t images, double loss, double accuracy);
  void finish();

  double images_per_sec() const;  // since construction
  // The line for the given numbers (no '\r'), for tests.
  static std::string render(const std::string& label, int64_t done, int64_t total, double loss, double accuracy,
                            double images_per_sec, double eta_seconds);

 private:
  std::string label_;
  int64_t total_, first_;
  bool enabled_, interactive_, finished_ = false;
  std::FILE* out_;
  int64_t images_ = 0;
  size_t last_len_ = 0;
  int64_t next_report_;  // non-interactive: the batch count that prints the next line
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace minidl
