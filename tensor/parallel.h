// Thread count for the OpenMP kernels. Set from --threads or OMP_NUM_THREADS; results are
// identical run to run for a given count (reductions are split and summed in a fixed order).
#pragma once

namespace minidl {
void set_num_threads(int n);
int get_num_threads();

// Sets the thread count for the enclosing scope and restores the previous one on exit.
class ThreadCountGuard {
 public:
  explicit ThreadCountGuard(int n) : prev_(get_num_threads()) { set_num_threads(n); }
  ~ThreadCountGuard() { set_num_threads(prev_); }
  ThreadCountGuard(const ThreadCountGuard&) = delete;
  ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

 private:
  int prev_;
};
}  // namespace minidl
