#include "tensor/host_allocator.h"

#include <cstdlib>
#include <string>

#include "tensor/block_cache.h"
#include "tensor/error.h"
#include "tensor/storage.h"

namespace minidl {

namespace {

constexpr size_t kAlignment = Storage::kAlignment;

bool default_caching() {
#if defined(__SANITIZE_ADDRESS__)
  return false;  // AddressSanitizer must see each tensor as its own allocation
#else
  return true;
#endif
}

// One per process, never destroyed: tensors freed during exit still have a cache to go to.
BlockCache& cache() {
  static BlockCache* c = [] {
    const char* env = std::getenv("MINIDL_CPU_ALLOC");
    const bool caching = env ? parse_host_alloc_mode(env) : default_caching();
    return new BlockCache(
        [](size_t n) -> void* { return std::aligned_alloc(kAlignment, (n + kAlignment - 1) / kAlignment * kAlignment); },
        [](void* p) { std::free(p); }, caching);
  }();
  return *c;
}

}  // namespace

bool parse_host_alloc_mode(const char* value) {
  if (!value || !*value || std::string(value) == "cache") return true;
  if (std::string(value) == "direct") return false;
  throw Error(detail::concat("MINIDL_CPU_ALLOC='", value, "' is not an allocator mode: expected cache or direct"));
}

void* host_alloc(size_t nbytes) {
  void* p = cache().allocate(nbytes);
  MINIDL_CHECK(p != nullptr, "out of memory allocating ", nbytes, " bytes on the cpu (", cache().bytes_in_use() >> 20,
               " MiB in use by tensors)");
  return p;
}

void host_free(void* ptr) {
  if (ptr) cache().release(ptr);
}

void host_empty_cache() { cache().release_cached(); }

HostMemoryStats host_memory_stats() {
  BlockCache& c = cache();
  HostMemoryStats s;
  s.bytes_in_use = c.bytes_in_use();
  s.bytes_reserved = c.bytes_reserved();
  s.peak_bytes_in_use = c.peak_bytes_in_use();
  s.system_allocs = c.raw_allocs();
  s.cache_hits = c.cache_hits();
  s.caching = c.caching();
  return s;
}

}  // namespace minidl
