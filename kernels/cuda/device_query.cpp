// Asks the CUDA runtime whether a GPU is usable. A CUDA build on a machine without a GPU
// (or without a driver) gets a clear reason instead of a crash, and runs on the CPU.
#include <cuda_runtime.h>

#include <string>

namespace minidl::cuda {

bool query_available(std::string* why) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why) *why = std::string("CUDA built, but no usable GPU: cudaGetDeviceCount: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later queries start clean
    return false;
  }
  if (count == 0) {
    if (why) *why = "CUDA built, but no GPU found";
    return false;
  }
  if (why) {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    *why = std::string("CUDA GPU 0: ") + prop.name + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
           ", " + std::to_string(count) + " device(s))";
  }
  return true;
}

}  // namespace minidl::cuda
