// Moves loader batches to the device the model runs on. On the GPU every tensor goes
// through one page-locked (pinned) host buffer, kept and reused from batch to batch (it
// grows to the largest batch seen): the copy from pinned memory is a single DMA transfer at
// full bus speed, where a pageable source would be staged by the driver in small chunks.
// cuda::copy_host_to_device returns only once its source may be reused (runtime.h), so one
// buffer serves every upload without a race. On the CPU the batch passes through untouched.
#pragma once
#include <cstddef>

#include "datasets/loader.h"

namespace minidl {

class DeviceUploader {
 public:
  // `device` is where batches go; CUDA needs a build with CUDA and a GPU (resolve first).
  explicit DeviceUploader(Device device);
  ~DeviceUploader();
  DeviceUploader(const DeviceUploader&) = delete;
  DeviceUploader& operator=(const DeviceUploader&) = delete;

  Device device() const { return device_; }
  // The batch with images and labels on the device (indices and position stay on the host).
  Batch upload(Batch batch);
  // One host tensor onto the device (returned unchanged when the device is the CPU).
  Tensor upload(const Tensor& host);

 private:
  Device device_;
  void* pinned_ = nullptr;  // page-locked staging buffer (CUDA only)
  size_t capacity_ = 0;
};

}  // namespace minidl
