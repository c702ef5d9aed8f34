// cuda_available()/cuda_status(): the CPU side of the CUDA seam. With MINIDL_WITH_CUDA the
// answers come from kernels/cuda/device_query.cpp (the CUDA runtime); without it they say
// the backend was not built.
#include "tensor/device.h"

namespace minidl {

#ifdef MINIDL_WITH_CUDA
namespace cuda {
bool query_available(std::string* why);  // kernels/cuda/device_query.cpp
}
bool cuda_available() { return cuda::query_available(nullptr); }
std::string cuda_status() {
  std::string why;
  cuda::query_available(&why);
  return why;
}
#else
bool cuda_available() { return false; }
std::string cuda_status() { return "CUDA backend not built (configure with nvcc present, or -DMINIDL_CUDA=ON)"; }
#endif

}  // namespace minidl
