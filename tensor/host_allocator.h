// Host memory for tensor storage: a BlockCache (tensor/block_cache.h) over 64-byte-aligned
// aligned_alloc. Why cache on the CPU: a training or inference step frees and re-allocates
// the same activation sizes every step, and glibc hands large blocks back to the kernel, so
// each step page-faulted (and the kernel zeroed) ~100 MB afresh -- measured 25-30 K page
// faults per ResNet50 inference step at batch 64. Cached blocks stay mapped and warm.
//
// MINIDL_CPU_ALLOC=cache (default) or direct (aligned_alloc/free per tensor: what memory
// checkers need; the default under AddressSanitizer).
#pragma once
#include <cstddef>
#include <cstdint>

namespace minidl {

// At least nbytes, 64-byte aligned; throws an Error naming the size when memory runs out.
void* host_alloc(size_t nbytes);
void host_free(void* ptr);
// Gives every cached block back to the system.
void host_empty_cache();

struct HostMemoryStats {
  size_t bytes_in_use = 0, bytes_reserved = 0, peak_bytes_in_use = 0;
  int64_t system_allocs = 0, cache_hits = 0;
  bool caching = true;
};
HostMemoryStats host_memory_stats();

// Parses a MINIDL_CPU_ALLOC value: nullptr/""/"cache" -> true, "direct" -> false, else Error.
bool parse_host_alloc_mode(const char* value);

}  // namespace minidl
