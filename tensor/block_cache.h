// The bookkeeping of minidl's caching allocators, for host tensors (tensor/host_allocator.cpp,
// over aligned_alloc) and device tensors (kernels/cuda/allocator.cpp, over cudaMalloc): sizes
// are rounded to a few classes, freed blocks go to a size-ordered free list instead of back to
// the system, and an allocation takes the smallest cached block that
// fits without wasting more than half of it. No block is split or merged: ResNet training
// asks for the same sizes every step, so after the first step every request is a cache hit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

namespace minidl {

class BlockCache {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // nullptr when the device is out of memory
  using RawFree = std::function<void(void*)>;

  // caching = false makes every release a raw free at once (MINIDL_CUDA_ALLOC=direct): slower,
  // but a memory checker then sees each tensor as its own allocation and catches overruns
  // into what would otherwise be a neighbouring cached block.
  BlockCache(RawAlloc raw_alloc, RawFree raw_free, bool caching = true)
      : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)), caching_(caching) {}
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // Requests are rounded up: to 512 bytes below 1 MiB, to 2 MiB above (fewer distinct sizes,
  // more reuse; at most 2 MiB of slack on a large block).
  static size_t round_size(size_t nbytes) {
    constexpr size_t kSmall = 512, kLarge = size_t(2) << 20, kSmallLimit = size_t(1) << 20;
    if (nbytes == 0) nbytes = 1;
    const size_t q = nbytes < kSmallLimit ? kSmall : kLarge;
    return (nbytes + q - 1) / q * q;
  }

  // A block of at least nbytes, or nullptr when the raw allocator fails even after the cache
  // was emptied (the caller turns that into an out-of-memory error).
  void* allocate(size_t nbytes) {
    std::lock_guard<std::mutex> lock(mu_);
    // Without caching nothing is reused, so rounding would only waste memory.
    const size_t want = caching_ ? round_size(nbytes) : (nbytes == 0 ? 1 : nbytes);
    auto it = free_.lower_bound(want);
    if (it != free_.end() && it->first <= 2 * want) {
      void* p = it->second;
      live_[p] = it->first;
      in_use_ += it->first;
      free_.erase(it);
      ++cache_hits_;
      note_peak();
      return p;
    }
    void* p = raw_alloc_(want);
    if (!p) {  // out of memory: give the cached blocks back and try once more
      release_cached_locked();
      p = raw_alloc_(want);
      if (!p) return nullptr;
    }
    ++raw_allocs_;
    reserved_ += want;
    live_[p] = want;
    in_use_ += want;
    note_peak();
    return p;
  }

  // Returns a block to the cache. False when p did not come from allocate (or was freed twice).
  bool release(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    const size_t size = it->second;
    in_use_ -= size;
    live_.erase(it);
    if (caching_) {
      free_.emplace(size, p);
    } else {
      reserved_ -= size;
      raw_free_(p);
    }
    return true;
  }

  // Gives every cached block back through raw_free.
  void release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached_locked();
  }

  size_t bytes_in_use() const { std::lock_guard<std::mutex> l(mu_); return in_use_; }
  size_t bytes_reserved() const { std::lock_guard<std::mutex> l(mu_); return reserved_; }
  size_t peak_bytes_in_use() const { std::lock_guard<std::mutex> l(mu_); return peak_; }
  int64_t raw_allocs() const { std::lock_guard<std::mutex> l(mu_); return raw_allocs_; }
  int64_t cache_hits() const { std::lock_guard<std::mutex> l(mu_); return cache_hits_; }
  bool caching() const { return caching_; }

 private:
  // Each block leaves the free list before raw_free runs: if raw_free throws (cudaFree or
  // the stream sync reporting an earlier kernel's fault), the blocks already given back are
  // not freed a second time by a later call.
  void release_cached_locked() {
    while (!free_.empty()) {
      const auto it = free_.begin();
      const size_t size = it->first;
      void* p = it->second;
      free_.erase(it);
      reserved_ -= size;
      raw_free_(p);
    }
  }
  void note_peak() {
    if (in_use_ > peak_) peak_ = in_use_;
  }

  RawAlloc raw_alloc_;
  RawFree raw_free_;
  bool caching_ = true;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;       // cached blocks by size
  std::unordered_map<void*, size_t> live_;  // handed-out blocks and their rounded sizes
  size_t in_use_ = 0, reserved_ = 0, peak_ = 0;
  int64_t raw_allocs_ = 0, cache_hits_ = 0;
};

}  // namespace minidl
