// Storage: one reference-counted, 64-byte-aligned block of bytes. Tensors are views
// (shape, strides, offset) over a shared Storage, so reshape/permute/narrow never copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tensor/device.h"

namespace minidl {

class Storage {
 public:
  static constexpr size_t kAlignment = 64;  // a cache line, and a full AVX-512 vector
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_ = Device::CPU;
};

}  // namespace minidl
