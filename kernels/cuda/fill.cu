// fill_f32 / fill_f64 / fill_i64: dst[i] = value, for full(), ones() and friends on the device (zeros
// could be a memset, but one kernel for every value keeps the path the same).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

namespace {
template <class T>
__global__ void fill_kernel(T* dst, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}
}  // namespace

// Asking for a kernel's attributes creates the context and loads this build's module, so a
// GPU the build has no code for (older than sm_90 with the default architectures), or one
// that cannot be used at all (exclusive-process and taken), fails here, in the availability
// probe (device_query.cpp), instead of at the first launch.
cudaError_t probe_kernel_image() {
  cudaFuncAttributes attr{};
  return cudaFuncGetAttributes(&attr, fill_kernel<float>);
}

void fill_f32(float* dst, int64_t n, float value) {
  if (n <= 0) return;
  fill_kernel<float><<<grid_for(n), 256, 0, stream()>>>(dst, n, value);
  MINIDL_CUDA_CHECK_LAUNCH("fill_f32");
}

void fill_f64(double* dst, int64_t n, double value) {
  if (n <= 0) return;
  fill_kernel<double><<<grid_for(n), 256, 0, stream()>>>(dst, n, value);
  MINIDL_CUDA_CHECK_LAUNCH("fill_f64");
}

void fill_i64(int64_t* dst, int64_t n, int64_t value) {
  if (n <= 0) return;
  fill_kernel<int64_t><<<grid_for(n), 256, 0, stream()>>>(dst, n, value);
  MINIDL_CUDA_CHECK_LAUNCH("fill_i64");
}

}  // namespace minidl::cuda
