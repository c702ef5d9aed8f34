// The caching allocators' bookkeeping (tensor/block_cache.h), driven here with
// malloc so it is tested on every machine, GPU or not.
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>
#include <stdexcept>
#include <vector>

#include "tensor/block_cache.h"
#include "tensor/error.h"
#include "tensor/host_allocator.h"
#include "tensor/tensor.h"

using minidl::BlockCache;

namespace {
// A raw allocator with a budget, counting calls, so tests can run out of "device memory".
struct FakeDevice {
  size_t budget = size_t(1) << 30, used = 0;
  int mallocs = 0, frees = 0;
  std::vector<std::pair<void*, size_t>> blocks;
  BlockCache make() {
    return BlockCache(
        [this](size_t n) -> void* {
          if (used + n > budget) return nullptr;
          used += n;
          ++mallocs;
          void* p = std::malloc(n);
          blocks.push_back({p, n});
          return p;
        },
        [this](void* p) {
          for (auto it = blocks.begin(); it != blocks.end(); ++it)
            if (it->first == p) {
              used -= it->second;
              blocks.erase(it);
              break;
            }
          ++frees;
          std::free(p);
        });
  }
};
}  // namespace

TEST_CASE("block cache: sizes round to 512 bytes below 1 MiB and to 2 MiB above") {
  CHECK(BlockCache::round_size(0) == 512);
  CHECK(BlockCache::round_size(1) == 512);
  CHECK(BlockCache::round_size(512) == 512);
  CHECK(BlockCache::round_size(513) == 1024);
  CHECK(BlockCache::round_size((1 << 20) - 1) == (1 << 20));
  CHECK(BlockCache::round_size(1 << 20) == (size_t(2) << 20));
  CHECK(BlockCache::round_size((size_t(2) << 20) + 1) == (size_t(4) << 20));
}

TEST_CASE("block cache: a freed block is reused for the same size without a new raw allocation") {
  FakeDevice dev;
  BlockCache cache = dev.make();
  void* a = cache.allocate(1000);
  REQUIRE(a != nullptr);
  CHECK(cache.bytes_in_use() == 1024);
  CHECK(cache.release(a));
  CHECK(cache.bytes_in_use() == 0);
  CHECK(cache.bytes_reserved() == 1024);
  void* b = cache.allocate(1001);
  CHECK(b == a);
  CHECK(dev.mallocs == 1);
  CHECK(cache.cache_hits() == 1);
  CHECK(cache.peak_bytes_in_use() == 1024);
  CHECK(cache.release(b));
}

TEST_CASE("block cache: a cached block more than twice the request is not handed out") {
  FakeDevice dev;
  BlockCache cache = dev.make();
  void* big = cache.allocate(64 << 10);
  CHECK(cache.release(big));
  void* small = cache.allocate(1 << 10);  // 64 KiB would waste 63 KiB: take a new block
  CHECK(small != big);
  CHECK(dev.mallocs == 2);
  void* medium = cache.allocate(40 << 10);  // 64 KiB for 40 KiB is within 2x: reuse
  CHECK(medium == big);
  CHECK(cache.release(small));
  CHECK(cache.release(medium));
}

TEST_CASE("block cache: live blocks are distinct; unknown and double frees are refused") {
  FakeDevice dev;
  BlockCache cache = dev.make();
  std::set<void*> seen;
  std::vector<void*> live;
  for (size_t n : {100, 100, 5000, 100, 3 << 20, 5000}) {
    void* p = cache.allocate(n);
    CHECK(seen.insert(p).second);
    live.push_back(p);
  }
  int dummy = 0;
  CHECK_FALSE(cache.release(&dummy));
  CHECK(cache.release(live[0]));
  CHECK_FALSE(cache.release(live[0]));
  for (size_t i = 1; i < live.size(); ++i) CHECK(cache.release(live[i]));
  CHECK(cache.bytes_in_use() == 0);
}

TEST_CASE("block cache: out of memory empties the cache and retries once, then reports nullptr") {
  FakeDevice dev;
  dev.budget = 8 << 20;
  BlockCache cache = dev.make();
  void* a = cache.allocate(3 << 20);  // rounds to 4 MiB
  REQUIRE(a != nullptr);
  CHECK(cache.release(a));  // cached, still counted against the budget
  void* b = cache.allocate(5 << 20);  // 6 MiB: fits only once the cached 4 MiB is given back
  CHECK(b != nullptr);
  CHECK(dev.frees == 1);
  CHECK(cache.bytes_reserved() == (size_t(6) << 20));
  CHECK(cache.allocate(7 << 20) == nullptr);  // 6 + 8 MiB exceeds the budget even after emptying
  CHECK(cache.bytes_in_use() == (size_t(6) << 20));
  CHECK(cache.release(b));
  cache.release_cached();
  CHECK(cache.bytes_reserved() == 0);
  CHECK(dev.used == 0);
}

TEST_CASE("block cache: a raw free that throws leaves no block to be freed twice") {
  // On the GPU the raw free syncs the stream first, which reports an earlier kernel's fault.
  int calls = 0;
  std::set<void*> freed;
  BlockCache cache([](size_t n) -> void* { return std::malloc(n); },
                   [&](void* p) {
                     CHECK(freed.insert(p).second);  // never the same block twice
                     std::free(p);
                     if (++calls == 2) throw std::runtime_error("fault reported by the sync");
                   });
  std::vector<void*> blocks;
  for (size_t i = 1; i <= 4; ++i) blocks.push_back(cache.allocate(1000 * i));
  for (void* p : blocks) CHECK(cache.release(p));
  CHECK_THROWS_AS(cache.release_cached(), std::runtime_error);
  CHECK(freed.size() == 2);
  cache.release_cached();  // the other two, once each
  CHECK(freed.size() == 4);
  CHECK(cache.bytes_reserved() == 0);
}

TEST_CASE("block cache: without caching every release is a raw free at once") {
  FakeDevice dev;
  BlockCache cache(
      [&](size_t n) -> void* {
        ++dev.mallocs;
        return std::malloc(n);
      },
      [&](void* p) {
        ++dev.frees;
        std::free(p);
      },
      /*caching=*/false);
  void* a = cache.allocate(1000);
  CHECK(cache.release(a));
  CHECK(dev.frees == 1);
  CHECK(cache.bytes_reserved() == 0);
  void* b = cache.allocate(1000);
  CHECK(dev.mallocs == 2);
  CHECK(cache.cache_hits() == 0);
  CHECK(cache.release(b));
  CHECK(cache.bytes_in_use() == 0);
}

TEST_CASE("host allocator: tensors freed and made again reuse cached blocks; the mode is parsed strictly") {
  using namespace minidl;
  CHECK(parse_host_alloc_mode(nullptr));
  CHECK(parse_host_alloc_mode(""));
  CHECK(parse_host_alloc_mode("cache"));
  CHECK_FALSE(parse_host_alloc_mode("direct"));
  CHECK_THROWS_WITH_AS(parse_host_alloc_mode("pool"), doctest::Contains("MINIDL_CPU_ALLOC='pool'"), Error);
  if (!host_memory_stats().caching) return;  // MINIDL_CPU_ALLOC=direct or a sanitizer build
  { Tensor warm = Tensor::empty({3, 1000, 1000}); }
  const HostMemoryStats before = host_memory_stats();
  for (int i = 0; i < 5; ++i) {
    Tensor t = Tensor::empty({3, 1000, 1000});
    CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % Storage::kAlignment == 0);
  }
  const HostMemoryStats after = host_memory_stats();
  CHECK(after.system_allocs == before.system_allocs);
  CHECK(after.cache_hits >= before.cache_hits + 5);
  CHECK(after.bytes_in_use == before.bytes_in_use);
}
