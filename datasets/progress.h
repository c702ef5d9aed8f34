// ProgressBar: a one-line progress bar for long loops (decoding a dataset, an epoch):
//
//   decoding [##########------------]  12000/27000  44%  1.3s  9231/s  <suffix>
//
// On a terminal it redraws in place ('\r'), at most every 0.1 s. When the stream is not a
// terminal (a log file, CI) it writes nothing until finish(), which prints the final line
// once, so logs stay short. update()/add() may be called from several threads.
#pragma once
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>

namespace minidl {

class ProgressBar {
 public:
  // `out` defaults to std::cerr; `enabled` false makes every call a no-op.
  ProgressBar(std::string label, int64_t total, bool enabled = true);
  ProgressBar(std::string label, int64_t total, std::ostream& out, bool interactive, bool enabled = true);
  ~ProgressBar();  // finishes the line if finish() was not called
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int64_t done);  // absolute progress
  void add(int64_t n = 1);    // relative progress
  void set_suffix(const std::string& text);  // extra text after the rate (e.g. "loss 0.412")
  void finish();              // draws the final state and ends the line (once)

  // The line as drawn for `done` items after `seconds` (no '\r'); exposed for tests.
  std::string render(int64_t done, double seconds) const;

 private:
  void draw_locked(bool final_line);
  void maybe_draw_locked();

  std::string label_, suffix_;
  int64_t total_, done_ = 0;
  std::ostream* out_;
  bool interactive_, enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  mutable std::mutex mu_;
};

}  // namespace minidl
