#include "datasets/device_upload.h"

#include <cstring>

#include "tensor/error.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace minidl {

DeviceUploader::DeviceUploader(Device device) : device_(device) {
#ifndef MINIDL_WITH_CUDA
  MINIDL_CHECK(device == Device::CPU, "DeviceUploader: device ", device_name(device),
               " needs the CUDA backend, which this build does not have; resolve the device first");
#endif
}

DeviceUploader::~DeviceUploader() {
#ifdef MINIDL_WITH_CUDA
  if (pinned_) {
    try {
      cuda::pinned_free(pinned_);
    } catch (const Error&) {  // a destructor must not throw; the memory goes with the process
    }
  }
#endif
}

Tensor DeviceUploader::upload(const Tensor& host) {
  if (device_ == Device::CPU || host.device() == device_) return host;
#ifdef MINIDL_WITH_CUDA
  const Tensor src = host.is_contiguous() ? host : host.contiguous();
  const size_t nbytes = size_t(src.numel()) * dtype_size(src.dtype());
  Tensor out = Tensor::empty(src.shape(), src.dtype(), device_);
  if (nbytes == 0) return out;
  if (nbytes > capacity_) {
    if (pinned_) cuda::pinned_free(pinned_);
    pinned_ = nullptr;  // so a failed allocation below leaves no dangling pointer
    capacity_ = 0;
    pinned_ = cuda::pinned_alloc(nbytes);
    capacity_ = nbytes;
  }
  std::memcpy(pinned_, src.raw_data(), nbytes);
  cuda::copy_host_to_device(out.raw_data(), pinned_, nbytes);
  return out;
#else
  return host.to(device_);  // unreachable: the constructor refuses CUDA in this build
#endif
}

Batch DeviceUploader::upload(Batch batch) {
  batch.images = upload(batch.images);
  batch.labels = upload(batch.labels);
  return batch;
}

}  // namespace minidl
