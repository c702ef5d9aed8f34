#include "tensor/storage.h"

#include <cstdlib>
#include <new>

#include "tensor/error.h"

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
  // aligned_alloc needs a size that is a multiple of the alignment.
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded);
  MINIDL_CHECK(data_ != nullptr, "Storage: out of memory allocating ", nbytes, " bytes on the cpu");
}

Storage::~Storage() {
#ifdef MINIDL_WITH_CUDA
  if (device_ == Device::CUDA) {
    cuda::device_free(data_);
    return;
  }
#endif
  std::free(data_);
}

}  // namespace minidl
