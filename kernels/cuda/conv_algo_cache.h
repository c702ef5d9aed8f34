// The bookkeeping behind cuDNN's algorithm choice, in plain C++ (no CUDA or cuDNN types) so
// the CPU tests cover it: the key a convolution's plan is cached under, the rule that picks
// one algorithm from cuDNN's measured candidates, and the cache itself.
//
// cuDNN offers several algorithms per pass (implicit GEMM, FFT, Winograd, ...) whose speed
// depends on the exact shape; finding the best means running them all (cudnnFind*), which
// costs far more than one convolution. So it is done once per distinct shape and remembered.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace minidl::cuda {

// Everything that can change cuDNN's choice: the input, the filter, stride and padding
// (NCHW float32, dilation 1 and groups 1 are fixed by minidl's conv2d), and whether the
// buffers the search ran on were 16-byte aligned: an algorithm measured on aligned buffers
// (vector loads) is not assumed to run on a view that starts mid-vector.
struct ConvKey {
  int64_t N, C, H, W;   // input
  int64_t O, KH, KW;    // filter
  int64_t SH, SW, PH, PW;
  bool aligned16 = true;
  bool operator==(const ConvKey&) const = default;
};

// True when every pointer is 16-byte aligned (nullptr counts as aligned).
inline bool aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

struct ConvKeyHash {
  size_t operator()(const ConvKey& k) const {
    // FNV-1a over the twelve fields: cheap, and distinct shapes differ in some field.
    uint64_t h = 1469598103934665603ull;
    for (int64_t v : {k.N, k.C, k.H, k.W, k.O, k.KH, k.KW, k.SH, k.SW, k.PH, k.PW, int64_t{k.aligned16}}) {
      h ^= static_cast<uint64_t>(v);
      h *= 1099511628211ull;
    }
    return static_cast<size_t>(h);
  }
};

// One measured algorithm, as cudnnFind* reports it (the fields the choice needs).
struct AlgoCandidate {
  int algo = 0;               // the cuDNN enum value of this pass
  bool ok = false;            // status == CUDNN_STATUS_SUCCESS
  float time_ms = 0;          // measured time
  size_t workspace = 0;       // bytes it needs
  bool deterministic = false; // the same bits on every run (no atomics)
  bool tensor_op = false;     // uses TF32/FP16 tensor cores: excluded, it breaks 1e-5 parity
};

// The candidate to run, or -1 when none is usable: the fastest one that succeeded, fits
// `max_workspace` and computes in plain FP32; but a deterministic one is preferred when it
// is at most `det_slack` (10 %) slower, since reproducible training is worth that little.
inline int pick_algo(const std::vector<AlgoCandidate>& c, size_t max_workspace, double det_slack = 0.10) {
  int fastest = -1, fastest_det = -1;
  for (int i = 0; i < static_cast<int>(c.size()); ++i) {
    const AlgoCandidate& a = c[static_cast<size_t>(i)];
    if (!a.ok || a.tensor_op || a.workspace > max_workspace || !(a.time_ms >= 0)) continue;
    if (fastest < 0 || a.time_ms < c[static_cast<size_t>(fastest)].time_ms) fastest = i;
    if (a.deterministic && (fastest_det < 0 || a.time_ms < c[static_cast<size_t>(fastest_det)].time_ms))
      fastest_det = i;
  }
  if (fastest_det >= 0 &&
      c[static_cast<size_t>(fastest_det)].time_ms <= c[static_cast<size_t>(fastest)].time_ms * (1.0 + det_slack))
    return fastest_det;
  return fastest;
}

// A thread-safe map from a convolution's key to its plan (V: whatever the backend keeps per
// shape). make(key) runs once per key, outside the lock: finding algorithms launches work
// on the GPU and can take milliseconds, and a throwing make() leaves nothing cached, so a
// failed search is tried again next time instead of being remembered.
template <class V>
class ConvPlanCache {
 public:
  V& get(const ConvKey& key, const std::function<std::unique_ptr<V>(const ConvKey&)>& make) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = map_.find(key);
      if (it != map_.end()) return *it->second;
    }
    std::unique_ptr<V> made = make(key);
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = map_.try_emplace(key, std::move(made));
    (void)inserted;  // another thread may have made it first; either plan is valid
    return *it->second;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return map_.size();
  }
  // Drops every plan; references get() returned before become dangling (tests only).
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    map_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<ConvKey, std::unique_ptr<V>, ConvKeyHash> map_;
};

}  // namespace minidl::cuda
