// Shared pieces of bench_kernels and bench_train: wall-clock timing with medians, the
// machine's own peaks (register-only FMA loops, a triad bandwidth loop), OpenBLAS core
// selection, peak RSS, and a tiny flag parser. Header-only; benches only (never the library).
#pragma once
#include <immintrin.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double elapsed_s(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Median of a sample (mean of the middle two for even sizes); 0 for an empty one.
inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// max|got - ref| / max|ref| over n elements; a NaN on either side is an infinite error,
// never hidden by max.
inline double rel_err(const float* got, const float* ref, int64_t n) {
  double d = 0, r = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::abs(double(got[i]) - double(ref[i]));
    if (e != e) return HUGE_VAL;
    d = std::max(d, e);
    r = std::max(r, std::abs(double(ref[i])));
  }
  return d / std::max(r, 1e-30);
}

// Lets worker threads that a library left spinning (libgomp ~ms, OpenBLAS ~0.1 s) go idle
// before the next contender starts, so one library's spin does not steal another's core.
inline void idle_for(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

// One contender of a side-by-side measurement. calibrate() warms it up (caches, page
// faults, thread pools) and picks how many back-to-back calls make one sample last about
// `target_s`; sample() returns seconds per call over that many calls.
struct Contender {
  std::function<void()> body;
  int64_t calls_per_sample = 1;
  void calibrate(double target_s) {
    body();
    const auto t0 = Clock::now();
    body();
    calls_per_sample = std::max<int64_t>(1, int64_t(target_s / std::max(elapsed_s(t0), 1e-7)));
  }
  double sample() const {
    const auto t0 = Clock::now();
    for (int64_t c = 0; c < calls_per_sample; ++c) body();
    return elapsed_s(t0) / double(calls_per_sample);
  }
};

// ------------------------------------------------------------------------------ peaks
// FMA peak: CHAINS independent accumulator chains of fused multiply-adds kept in registers
// (no memory traffic), enough chains to cover FMA latency x FMA ports. FLOPs per iteration
// = CHAINS * lanes * 2.
constexpr int kFmaChains = 12;

// The loop on GCC vector types of 8 or 16 floats; always inlined into the two ISA-specific
// wrappers below, so it is compiled for their instruction sets (a * b + c contracts to one FMA).
template <class V>
__attribute__((always_inline)) inline float fma_chains(int64_t iters) {
  V acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = V{} + (0.5f + float(c));
  const V mul = V{} + 0.99999f, add = V{} + 1e-6f;
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int c = 0; c < kFmaChains; ++c) acc[c] = acc[c] * mul + add;
  for (int c = 1; c < kFmaChains; ++c) acc[0] += acc[c];
  return acc[0][0];
}
typedef float Floats8 __attribute__((vector_size(32)));
typedef float Floats16 __attribute__((vector_size(64)));
__attribute__((target("avx2,fma"), noinline)) inline float fma_loop_avx2(int64_t iters) {
  return fma_chains<Floats8>(iters);
}
__attribute__((target("avx512f"), noinline)) inline float fma_loop_avx512(int64_t iters) {
  return fma_chains<Floats16>(iters);
}

inline bool cpu_has_avx2_fma_isa() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
inline bool cpu_has_avx512f_isa() { return __builtin_cpu_supports("avx512f"); }

// GFLOP/s of `threads` threads each running the FMA loop of `lanes` floats (8: AVX2,
// 16: AVX-512); best of three runs of ~0.1-0.2 s. 0 when the CPU lacks the ISA.
inline double measure_fma_peak(int lanes, int threads) {
  if (lanes == 16 ? !cpu_has_avx512f_isa() : !cpu_has_avx2_fma_isa()) return 0.0;
  const int64_t iters = lanes == 16 ? 6'000'000 : 10'000'000;
  double best = 0.0;
  volatile float keep = 0.f;  // the results are used, so the loops cannot be dropped
  for (int attempt = 0; attempt < 3; ++attempt) {
    float sum = 0.f;
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    sum += lanes == 16 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
    const double s = elapsed_s(t0);
    keep = keep + sum;
    best = std::max(best, double(threads) * double(iters) * kFmaChains * lanes * 2 / s / 1e9);
  }
  return best;
}

// Memory bandwidth in GB/s by a STREAM-style triad a = b + s * c over three arrays of
// `mb` MB each, `threads` threads, best of three; bytes counted = 3 arrays (2 read, 1 written).
inline double measure_triad_gbs(int threads, int64_t mb = 64) {
  const int64_t n = mb * 1024 * 1024 / 4;
  const size_t len = static_cast<size_t>(n);
  std::vector<float> a(len), b(len, 1.f), c(len, 2.f);
  double best = 0.0;
  for (int attempt = 0; attempt < 4; ++attempt) {  // the first pass also faults the pages in
    const auto t0 = Clock::now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < len; ++i) a[i] = b[i] + 0.5f * c[i];
    const double s = elapsed_s(t0);
    if (attempt > 0) best = std::max(best, 3.0 * 4.0 * double(n) / s / 1e9);
  }
  volatile float keep = a[len / 2];  // the stores are used, so they stay
  (void)keep;
  return best;
}

// ------------------------------------------------------------------------- processes

// OpenBLAS (DYNAMIC_ARCH) picks its kernels when the library loads, and Debian's 0.3.21
// mistakes this Xeon for a Prescott (SSE3). To get its AVX2 (Haswell) or AVX-512
// (SkylakeX) kernels the variable must be set before the process starts, so the bench
// re-executes itself with it. Returns only when nothing needs doing (or exits on failure).
inline void reexec_with_openblas_core(const std::string& core, char** argv, const char* prog) {
  if (core.empty()) return;
  const char* current = std::getenv("OPENBLAS_CORETYPE");
  if (current && core == current) return;
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "%s: could not re-run itself with OPENBLAS_CORETYPE=%s\n", prog, core.c_str());
  std::exit(1);
}

// Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB).
inline double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;
}

// ----------------------------------------------------------------------------- flags

// The value of --device in argv, "cpu" when absent: the bench programs pick their backend
// with it before parsing the rest (each backend has its own flags).
inline std::string device_flag(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--device") return argv[i + 1];
  return "cpu";
}

// Walks argv; each flag either matches (and may take its value) or is reported unknown.
class Flags {
 public:
  Flags(int argc, char** argv, const char* prog) : argc_(argc), argv_(argv), prog_(prog) {}
  bool next() { return ++i_ < argc_; }
  bool is(const char* name) const { return name == std::string(argv_[i_]); }
  std::string value() {
    if (i_ + 1 >= argc_) fail(std::string(argv_[i_]) + " needs a value");
    return argv_[++i_];
  }
  int int_value(int min) {
    const std::string flag = argv_[i_], v = value();
    char* end = nullptr;
    const long x = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || x < min) fail(flag + " wants an integer >= " + std::to_string(min) + ", got '" + v + "'");
    return int(x);
  }
  [[noreturn]] void unknown() const { fail(std::string("unknown flag '") + argv_[i_] + "'"); }
  [[noreturn]] void fail(const std::string& why) const {
    std::fprintf(stderr, "%s: %s (see --help)\n", prog_, why.c_str());
    std::exit(2);
  }

 private:
  int argc_;
  char** argv_;
  const char* prog_;
  int i_ = 0;
};

}  // namespace bench
