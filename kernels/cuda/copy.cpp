// The stream, copies between host and device, pinned memory, and CUDA errors as minidl::Error.
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  std::string msg = detail::concat("CUDA error in ", what, " (", file, ":", line, "): ", cudaGetErrorName(err), ": ",
                                   cudaGetErrorString(err));
  if (err == cudaErrorMemoryAllocation) msg += "; out of GPU memory: try a smaller --batch-size or image size";
  throw Error(msg);
}

cudaStream_t stream() {
  // A blocking stream (it still orders with the legacy default stream, so a library call
  // that forgot its stream is serialised rather than racing). Never destroyed: see allocator.
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    MINIDL_CUDA_CHECK(cudaStreamCreate(&created));
    return created;
  }();
  return s;
}

void* stream_handle() { return static_cast<void*>(stream()); }

// Host to device returns once the source may be reused: pageable sources are staged by the
// driver before the call returns, and the synchronisation covers pinned sources too (the
// overlapped, asynchronous input pipeline is issue 7's).
void copy_host_to_device(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  MINIDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream()));
  MINIDL_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_device_to_host(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  MINIDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream()));
  MINIDL_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_device_to_device(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  MINIDL_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream()));
}

void memset_zero(void* dst, size_t n) {
  if (n == 0) return;
  MINIDL_CUDA_CHECK(cudaMemsetAsync(dst, 0, n, stream()));
}

void* pinned_alloc(size_t nbytes) {
  void* p = nullptr;
  MINIDL_CUDA_CHECK(cudaMallocHost(&p, nbytes == 0 ? 1 : nbytes));
  return p;
}

void pinned_free(void* ptr) {
  if (ptr) MINIDL_CUDA_CHECK(cudaFreeHost(ptr));
}

void synchronize() { MINIDL_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace minidl::cuda
