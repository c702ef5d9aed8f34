// The caching device allocator: BlockCache (tensor/block_cache.h) over cudaMalloc/cudaFree. One per
// process, created on first use and never destroyed, so tensors freed during program exit
// still have an allocator to return to (and no cudaFree runs after the driver shuts down).
#include <cuda_runtime.h>

#include <cstdlib>
#include <string>

#include "tensor/block_cache.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

namespace {

// MINIDL_CUDA_ALLOC: "cache" (the default) or "direct" (cudaMalloc/cudaFree per tensor, for
// compute-sanitizer); anything else is an error naming the variable.
bool caching_from_env() {
  const char* v = std::getenv("MINIDL_CUDA_ALLOC");
  if (!v || !*v || std::string(v) == "cache") return true;
  if (std::string(v) == "direct") return false;
  throw Error(detail::concat("MINIDL_CUDA_ALLOC='", v, "' is not an allocator mode: expected cache or direct"));
}

BlockCache& cache() {
  static BlockCache* c = new BlockCache(
      [](size_t n) -> void* {
        void* p = nullptr;
        const cudaError_t err = cudaMalloc(&p, n);
        if (err == cudaErrorMemoryAllocation) {
          cudaGetLastError();  // clear it: the cache retries after emptying itself
          return nullptr;
        }
        if (err != cudaSuccess) throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
        return p;
      },
      [](void* p) {
        // Queued kernels may still use a cached block that is about to be freed.
        MINIDL_CUDA_CHECK(cudaStreamSynchronize(stream()));
        MINIDL_CUDA_CHECK(cudaFree(p));
      },
      caching_from_env());
  return *c;
}

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

void* device_alloc(size_t nbytes) {
  void* p = cache().allocate(nbytes);
  if (!p) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    throw Error(detail::concat("out of GPU memory allocating ", nbytes, " bytes (", mib(nbytes), "): ",
                               mib(cache().bytes_in_use()), " in use by minidl, ", mib(free_b), " free of ",
                               mib(total_b), " on the device; try a smaller --batch-size or image size"));
  }
  return p;
}

void device_free(void* ptr) {
  if (ptr) cache().release(ptr);  // a pointer the cache does not know is ignored, never freed twice
}

void empty_cache() { cache().release_cached(); }

MemoryStats memory_stats() {
  BlockCache& c = cache();
  MemoryStats s;
  s.bytes_in_use = c.bytes_in_use();
  s.bytes_reserved = c.bytes_reserved();
  s.peak_bytes_in_use = c.peak_bytes_in_use();
  s.driver_mallocs = c.raw_allocs();
  s.cache_hits = c.cache_hits();
  return s;
}

}  // namespace minidl::cuda
