#include "tensor/storage.h"

#include "tensor/error.h"
#include "tensor/host_allocator.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace minidl {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device == Device::CUDA) {
#ifdef MINIDL_WITH_CUDA
    MINIDL_CHECK(cuda_available(), "cannot allocate ", nbytes, " bytes on cuda: ", cuda_status());
    data_ = cuda::device_alloc(nbytes);  // the caching allocator; throws a clear out-of-memory Error
    return;
#else
    throw Error(detail::concat("cannot allocate ", nbytes, " bytes on cuda: ", cuda_status()));
#endif
  }
  data_ = host_alloc(nbytes);  // the caching host allocator (tensor/host_allocator.h)
}

Storage::~Storage() {
#ifdef MINIDL_WITH_CUDA
  if (device_ == Device::CUDA) {
    cuda::device_free(data_);
    return;
  }
#endif
  host_free(data_);
}

}  // namespace minidl
