// The CUDA backend's runtime services, as plain C++ (no CUDA headers), so tensor/ and the
// ops can call them: device memory through the caching allocator, copies between host and
// device, pinned staging memory, and synchronisation. Defined in kernels/cuda/*.cpp, which
// are compiled only when the build has CUDA (MINIDL_WITH_CUDA); callers guard with #ifdef.
//
// One stream to start with: every kernel, copy and library call is queued on the stream
// that stream_handle() returns, in program order, so a block the allocator hands out again
// is never still in use by earlier queued work.
#pragma once
#include <cstddef>
#include <cstdint>

namespace minidl::cuda {

// ---- device memory: the caching allocator (kernels/cuda/allocator.cpp) ----
// A block of at least nbytes on the GPU, 256-byte aligned. Reuses a cached block when one
// fits; otherwise cudaMalloc, and on out-of-memory it empties the cache and retries once
// before throwing an Error that names the size and suggests a smaller batch.
void* device_alloc(size_t nbytes);
// Returns a block from device_alloc to the cache (never to the driver).
void device_free(void* ptr);
// Gives every cached (unused) block back to the driver.
void empty_cache();

struct MemoryStats {
  size_t bytes_in_use = 0;       // handed out and not yet freed
  size_t bytes_reserved = 0;     // in use + cached, i.e. what cudaMalloc holds
  size_t peak_bytes_in_use = 0;
  int64_t driver_mallocs = 0;    // cudaMalloc calls so far
  int64_t cache_hits = 0;        // device_alloc calls served from the cache
};
MemoryStats memory_stats();

// ---- copies (kernels/cuda/copy.cpp); n is in bytes ----
void copy_host_to_device(void* dst, const void* src, size_t n);
void copy_device_to_host(void* dst, const void* src, size_t n);  // waits for the stream
void copy_device_to_device(void* dst, const void* src, size_t n);
void memset_zero(void* dst, size_t n);
// Page-locked host memory for the loader's staging buffers (fast, asynchronous uploads).
void* pinned_alloc(size_t nbytes);
void pinned_free(void* ptr);
// Waits until all queued work is done; reports a failed kernel as an Error.
void synchronize();
// The cudaStream_t everything runs on, as void* so plain C++ can hold it.
void* stream_handle();

// ---- small kernels the core needs (kernels/cuda/fill.cu) ----
void fill_f32(float* dst, int64_t n, float value);
void fill_f64(double* dst, int64_t n, double value);
void fill_i64(int64_t* dst, int64_t n, int64_t value);

}  // namespace minidl::cuda
