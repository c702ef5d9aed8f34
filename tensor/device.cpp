// cuda_available()/cuda_status(): the CPU side of the CUDA seam. With MINIDL_WITH_CUDA the
// answers come from kernels/cuda/device_query.cpp (the CUDA runtime), asked once per
// process; without it they say the backend was not built.
#include "tensor/device.h"

#include <cstdio>
#include <mutex>

#include "tensor/error.h"

namespace minidl {

#ifdef MINIDL_WITH_CUDA
namespace cuda {
bool query_available(std::string* why);  // kernels/cuda/device_query.cpp
}
namespace {
struct CudaProbe {
  bool available = false;
  std::string status;
};
const CudaProbe& probe() {
  static const CudaProbe p = [] {
    CudaProbe r;
    r.available = cuda::query_available(&r.status);
    return r;
  }();
  return p;
}
}  // namespace
bool cuda_available() { return probe().available; }
std::string cuda_status() { return probe().status; }
#else
bool cuda_available() { return false; }
std::string cuda_status() { return "CUDA backend not built (configure with nvcc present, or -DMINIDL_CUDA=ON)"; }
#endif

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda") return Device::CUDA;
  throw Error(detail::concat("unknown device '", name, "': expected cpu or cuda"));
}

Device resolve_device(Device requested) {
  if (requested == Device::CPU || cuda_available()) return requested;
  static std::once_flag said;
  std::call_once(said, [] {
    std::fprintf(stderr, "minidl: cuda requested, but %s; running on the cpu\n", cuda_status().c_str());
  });
  return Device::CPU;
}

}  // namespace minidl
