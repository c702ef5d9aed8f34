// Asks the CUDA runtime whether a GPU is usable. A CUDA build on a machine without a GPU
// (or without a driver) gets a clear reason instead of a crash, and runs on the CPU.
#include <cuda_runtime.h>

#include <string>

namespace minidl::cuda {

cudaError_t probe_kernel_image();  // fill.cu

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
  cudaDeviceProp prop{};
  err = cudaGetDeviceProperties(&prop, 0);
  if (err == cudaSuccess) err = probe_kernel_image();
  const std::string gpu = prop.major > 0 ? std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                                                std::to_string(prop.minor) + ")"
                                          : std::string("GPU 0");
  if (err != cudaSuccess) {
    if (why)
      *why = "CUDA built, but " + gpu + " cannot run its kernels: " + cudaGetErrorName(err) + ": " +
             cudaGetErrorString(err) + " (a GPU older than the built architectures? see CMAKE_CUDA_ARCHITECTURES)";
    cudaGetLastError();
    return false;
  }
  if (why) *why = "CUDA GPU 0: " + gpu + ", " + std::to_string(count) + " device(s)";
  return true;
}

}  // namespace minidl::cuda
