// Shared pieces of bench_kernels --device cuda (bench/gpu/, compiled only in CUDA builds):
// device buffers from minidl's caching allocator, random fills on the GPU, the error
// metric, event timing on cuda::stream(), the device's description and its measured copy
// bandwidth, and the case type the tables are made of. Plain C++17 (fill_random.cu includes it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bench::gpu {

// ------------------------------------------------------------------------ buffers
// A block of device memory (minidl::cuda::device_alloc), returned to the cache on destruction.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(ptr_); }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};
// Cases share their buffers between the timed closures and the check.
using Buf = std::shared_ptr<DeviceBuffer>;

Buf device_bytes(size_t bytes);
Buf device_floats(int64_t n);  // contents undefined
// dst[i] uniform in [lo, hi), a pure function of (seed, i), filled on the GPU (fill_random.cu).
void fill_uniform(float* dst, int64_t n, uint64_t seed, float lo, float hi);
Buf random_floats(int64_t n, uint64_t seed, float lo = -1.f, float hi = 1.f);
// Fills with NaN, so an element a kernel forgets to write shows up as an infinite error.
void poison(float* p, int64_t n);
std::vector<float> to_host(const float* p, int64_t n);  // waits for the stream
void to_device(float* dst, const std::vector<float>& src);

// bench::rel_err (bench_util.h) of two host vectors of one size, or of two device arrays
// (both copied back).
double rel_err(const std::vector<float>& got, const std::vector<float>& ref);
double rel_err_device(const float* got, const float* ref, int64_t n);

// ------------------------------------------------------------------------- timing
// Milliseconds per call of `body` (which queues work on cuda::stream()): `calls` calls
// between two events recorded on that stream, then a wait for the second.
double ms_per_call(const std::function<void()>& body, int64_t calls);
// Runs `body` `warmup` times (algorithm searches, first allocations, module loading), then
// picks how many back-to-back calls make one sample last about target_ms (1..10000).
int64_t calibrate(const std::function<void()>& body, int warmup, double target_ms);

// ------------------------------------------------------------------------- device
struct DeviceInfo {
  std::string name;
  int cc_major = 0, cc_minor = 0, sms = 0;
  double memory_gib = 0, l2_mib = 0;
};
DeviceInfo device_info();
// Device-to-device cudaMemcpyAsync of `bytes` on cuda::stream(): GB/s counting the bytes
// read plus the bytes written (2 x bytes per copy), median of `reps` after a warm-up.
double measure_copy_gbs(size_t bytes, int reps);

// -------------------------------------------------------------------------- cases
struct Case {
  double flop = 0, bytes = 0;  // work per call: FLOPs (GEMM, conv) or compulsory bytes
  std::string peer_name;       // "cuBLAS", "cuDNN"; empty: no peer
  std::function<void()> ours, peer;
  // Our result's relative error against the peer (or the CPU kernel where there is no
  // peer), from fresh runs on poisoned outputs; the row is flagged above `tolerance`.
  std::function<double()> check;
  double tolerance = 1e-3;
};

struct Spec {
  std::string name, group;
  int count = 1;  // layers of ResNet50 with this shape (weights the per-step totals)
  std::function<Case()> make;
  bool in_step = true;  // part of a training step (false: the square GEMMs), so summed per group
};

}  // namespace bench::gpu
