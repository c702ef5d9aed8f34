// Status checks for the CUDA runtime, for files compiled with the CUDA headers (.cu and the
// kernels/cuda/*.cpp wrappers). Every call's status becomes a minidl::Error that names the
// call; a launch is checked right after it with MINIDL_CUDA_CHECK_LAUNCH("kernel name").
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "tensor/error.h"

namespace minidl::cuda {

// Throws an Error naming `what` (the call's text) and the CUDA error; out-of-memory gets
// a hint to lower the batch size.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line);

// The stream all work is queued on (see runtime.h).
cudaStream_t stream();

// Grid size for a grid-stride loop over n items with `threads` per block.
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535LL * 32) blocks = 65535LL * 32;  // grid-stride loops cover the rest
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

}  // namespace minidl::cuda

#define MINIDL_CUDA_CHECK(call)                                                      \
  do {                                                                               \
    cudaError_t _e = (call);                                                         \
    if (_e != cudaSuccess) ::minidl::cuda::throw_cuda_error(_e, #call, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: catches bad launch configurations at once (errors inside the
// kernel surface at the next synchronising call).
#define MINIDL_CUDA_CHECK_LAUNCH(name)                                               \
  do {                                                                               \
    cudaError_t _e = cudaGetLastError();                                             \
    if (_e != cudaSuccess) ::minidl::cuda::throw_cuda_error(_e, "launch of " name, __FILE__, __LINE__); \
  } while (0)
