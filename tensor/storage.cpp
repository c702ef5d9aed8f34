#include "tensor/storage.h"

#include <cstdlib>
#include <new>

#include "tensor/error.h"

namespace minidl {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  MINIDL_CHECK(device == Device::CPU, "Storage: device ", device_name(device),
               " allocation is not available in this build; only cpu storage exists");
  // aligned_alloc needs a size that is a multiple of the alignment.
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded);
  MINIDL_CHECK(data_ != nullptr, "Storage: out of memory allocating ", nbytes, " bytes on the cpu");
}

Storage::~Storage() { std::free(data_); }

}  // namespace minidl
