// Scratch device memory for the duration of one call (a workspace, a column buffer): taken
// from the caching allocator and handed back when the scope ends, also when a launch throws.
// Handing it back while kernels that use it are still queued is safe: everything runs on
// one stream, so whoever gets the block next queues its work behind them (runtime.h).
// Plain C++ (runtime.h has no CUDA types); zero bytes allocate nothing (get() is nullptr).
#pragma once
#include <cstddef>

#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : p_(bytes ? device_alloc(bytes) : nullptr), bytes_(bytes) {}
  ~DeviceBuffer() {
    if (p_) device_free(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return p_; }
  template <class T> T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  void* p_;
  size_t bytes_;
};

}  // namespace minidl::cuda
