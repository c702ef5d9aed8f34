// bench::gpu infrastructure (see gpu_bench.h): buffers, copies, errors, event timing, the
// device's description and its copy bandwidth.
#include "bench/gpu/gpu_bench.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "bench/bench_util.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"
#include "tensor/error.h"

namespace bench::gpu {

namespace cu = minidl::cuda;

DeviceBuffer::DeviceBuffer(size_t bytes) : ptr_(cu::device_alloc(std::max<size_t>(bytes, 4))) {}
DeviceBuffer::~DeviceBuffer() { cu::device_free(ptr_); }

Buf device_bytes(size_t bytes) { return std::make_shared<DeviceBuffer>(bytes); }
Buf device_floats(int64_t n) { return device_bytes(size_t(n) * sizeof(float)); }

Buf random_floats(int64_t n, uint64_t seed, float lo, float hi) {
  Buf b = device_floats(n);
  fill_uniform(b->f(), n, seed, lo, hi);
  return b;
}

void poison(float* p, int64_t n) { cu::fill_f32(p, n, std::numeric_limits<float>::quiet_NaN()); }

std::vector<float> to_host(const float* p, int64_t n) {
  std::vector<float> h(static_cast<size_t>(n));
  cu::copy_device_to_host(h.data(), p, size_t(n) * sizeof(float));
  return h;
}

void to_device(float* dst, const std::vector<float>& src) {
  cu::copy_host_to_device(dst, src.data(), src.size() * sizeof(float));
}

double rel_err(const std::vector<float>& got, const std::vector<float>& ref) {
  MINIDL_CHECK(got.size() == ref.size(), "bench rel_err: ", got.size(), " values against ", ref.size());
  return bench::rel_err(got.data(), ref.data(), int64_t(ref.size()));
}

double rel_err_device(const float* got, const float* ref, int64_t n) {
  return rel_err(to_host(got, n), to_host(ref, n));
}

namespace {
// Two events on the benchmark stream, destroyed with the timer.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    MINIDL_CUDA_CHECK(cudaEventCreate(&start));
    MINIDL_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};
}  // namespace

double ms_per_call(const std::function<void()>& body, int64_t calls) {
  static EventPair ev;  // one pair for the whole run: event creation stays out of the samples
  MINIDL_CUDA_CHECK(cudaEventRecord(ev.start, cu::stream()));
  for (int64_t c = 0; c < calls; ++c) body();
  MINIDL_CUDA_CHECK(cudaEventRecord(ev.stop, cu::stream()));
  MINIDL_CUDA_CHECK(cudaEventSynchronize(ev.stop));
  float ms = 0.f;
  MINIDL_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
  return double(ms) / double(calls);
}

int64_t calibrate(const std::function<void()>& body, int warmup, double target_ms) {
  for (int w = 0; w < warmup; ++w) body();
  cu::synchronize();  // a kernel that failed during the warm-up is reported here, by name
  const double one = ms_per_call(body, 1);
  return std::clamp<int64_t>(int64_t(target_ms / std::max(one, 1e-4)), 1, 10000);
}

DeviceInfo device_info() {
  int dev = 0;
  MINIDL_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp p{};
  MINIDL_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  DeviceInfo d;
  d.name = p.name;
  d.cc_major = p.major, d.cc_minor = p.minor, d.sms = p.multiProcessorCount;
  d.memory_gib = double(p.totalGlobalMem) / double(1ull << 30);
  d.l2_mib = double(p.l2CacheSize) / double(1 << 20);
  return d;
}

double measure_copy_gbs(size_t bytes, int reps) {
  Buf src = device_bytes(bytes), dst = device_bytes(bytes);
  fill_uniform(src->f(), int64_t(bytes / sizeof(float)), 99, -1.f, 1.f);
  const auto copy = [&] {
    MINIDL_CUDA_CHECK(cudaMemcpyAsync(dst->f(), src->f(), bytes, cudaMemcpyDeviceToDevice, cu::stream()));
  };
  calibrate(copy, 3, 0);
  std::vector<double> ms;
  for (int r = 0; r < std::max(reps, 3); ++r) ms.push_back(ms_per_call(copy, 4));
  return 2.0 * double(bytes) / (bench::median_of(ms) * 1e-3) / 1e9;
}

}  // namespace bench::gpu
