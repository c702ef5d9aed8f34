// The plain-C++ logic of the GPU convolution, tested without a GPU: the cuDNN algorithm pick
// rule and the per-shape plan cache (kernels/cuda/conv_algo_cache.h), MINIDL_CONV parsing
// (kernels/cuda/conv_select.h) and the chunk size of our own conv (kernels/cuda/conv_own.h).
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/cuda/conv_algo_cache.h"
#include "kernels/cuda/conv_own.h"
#include "kernels/cuda/conv_select.h"
#include "test_util.h"

using namespace minidl;
using cuda::AlgoCandidate;
using cuda::ConvKey;
using cuda::pick_algo;

namespace {
AlgoCandidate cand(int algo, float ms, size_t ws = 0, bool det = true, bool ok = true, bool tensor_op = false) {
  return {algo, ok, ms, ws, det, tensor_op};
}
ConvKey key(int64_t n) { return {n, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1}; }
}  // namespace

TEST_CASE("pick_algo: the fastest usable candidate") {
  // Sorted the way cudnnFind returns them, but the rule must not rely on the order.
  CHECK(pick_algo({cand(0, 3.f), cand(1, 1.f), cand(2, 2.f)}, 0) == 1);
  CHECK(pick_algo({cand(2, 2.f), cand(0, 3.f), cand(1, 1.f)}, 0) == 2);
  SUBCASE("failed, tensor-op and too-hungry candidates are skipped") {
    const std::vector<AlgoCandidate> c = {cand(0, 0.5f, 0, true, false), cand(1, 0.6f, 0, true, true, true),
                                          cand(2, 0.7f, 1000), cand(3, 5.f, 10)};
    CHECK(pick_algo(c, 100) == 3);
    CHECK(pick_algo(c, 1000) == 2);  // exactly the limit fits
  }
  SUBCASE("nothing usable") {
    CHECK(pick_algo({}, 1 << 20) == -1);
    CHECK(pick_algo({cand(0, 1.f, 0, true, false), cand(1, 1.f, 0, true, true, true)}, 1 << 20) == -1);
    CHECK(pick_algo({cand(0, 1.f, 64)}, 63) == -1);
    CHECK(pick_algo({cand(0, -1.f)}, 0) == -1);  // cuDNN reports -1 ms for algorithms it did not run
  }
}

TEST_CASE("pick_algo: a deterministic candidate within 10% wins over a faster racy one") {
  CHECK(pick_algo({cand(0, 1.0f, 0, false), cand(1, 1.05f, 0, true)}, 0) == 1);
  CHECK(pick_algo({cand(0, 1.0f, 0, false), cand(1, 1.2f, 0, true)}, 0) == 0);
  CHECK(pick_algo({cand(0, 1.0f, 0, false), cand(1, 1.2f, 0, true)}, 0, 0.25) == 1);
  CHECK(pick_algo({cand(0, 1.0f, 0, false), cand(1, 1.01f, 0, false)}, 0) == 0);  // no deterministic one
}

TEST_CASE("ConvKey: every field (alignment too) takes part in equality and (practically) in the hash") {
  const ConvKey base = key(8);
  cuda::ConvKeyHash h;
  CHECK(base == key(8));
  CHECK(h(base) == h(key(8)));
  for (int f = 0; f < 11; ++f) {
    ConvKey k = base;
    int64_t* fields[] = {&k.N, &k.C, &k.H, &k.W, &k.O, &k.KH, &k.KW, &k.SH, &k.SW, &k.PH, &k.PW};
    *fields[f] += 1;
    CHECK_FALSE(k == base);
    CHECK(h(k) != h(base));
  }
  ConvKey unaligned = base;
  unaligned.aligned16 = false;
  CHECK_FALSE(unaligned == base);
  CHECK(h(unaligned) != h(base));
  // The same value in a different field is a different convolution: the hash is order-aware.
  ConvKey stride2 = base, pad2 = base;
  stride2.SH = 2;
  pad2.PH = 2;
  CHECK(h(stride2) != h(pad2));
}

TEST_CASE("aligned16: every pointer on a 16-byte boundary (nullptr counts as aligned)") {
  alignas(16) float buf[8] = {};
  CHECK(cuda::aligned16({buf, buf + 4, nullptr}));
  CHECK(cuda::aligned16({}));
  CHECK_FALSE(cuda::aligned16({buf, buf + 1}));
  CHECK_FALSE(cuda::aligned16({buf + 2}));
}

TEST_CASE("ConvPlanCache: one plan per shape, made once; a failed make is not remembered") {
  cuda::ConvPlanCache<int> cache;
  int made = 0;
  auto make = [&](const ConvKey& k) {
    ++made;
    return std::make_unique<int>(static_cast<int>(k.N) * 10);
  };
  CHECK(cache.get(key(1), make) == 10);
  CHECK(cache.get(key(2), make) == 20);
  CHECK(cache.get(key(1), make) == 10);
  CHECK(made == 2);
  CHECK(cache.size() == 2);
  // The reference stays valid while other shapes are added.
  int& one = cache.get(key(1), make);
  for (int n = 3; n < 200; ++n) cache.get(key(n), make);
  CHECK(&one == &cache.get(key(1), make));
  CHECK(one == 10);

  auto failing = [](const ConvKey&) -> std::unique_ptr<int> { throw Error("search failed"); };
  CHECK_THROWS_AS(cache.get(key(500), failing), Error);
  CHECK(cache.get(key(500), make) == 5000);
  cache.clear();
  CHECK(cache.size() == 0);
}

TEST_CASE("ConvPlanCache: threads asking for the same shape all get the same plan") {
  cuda::ConvPlanCache<int> cache;
  std::atomic<int> made{0};
  std::vector<const int*> seen(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      seen[static_cast<size_t>(t)] = &cache.get(key(7), [&](const ConvKey&) {
        ++made;
        return std::make_unique<int>(7);
      });
    });
  for (auto& th : threads) th.join();
  CHECK(made >= 1);
  CHECK(cache.size() == 1);
  for (const int* p : seen) CHECK(p == seen[0]);
}

TEST_CASE("MINIDL_CONV: cudnn by default, own on request, anything else an error naming the variable") {
  CHECK(cuda::parse_conv_impl(nullptr) == cuda::ConvImpl::Cudnn);
  CHECK(cuda::parse_conv_impl("") == cuda::ConvImpl::Cudnn);
  CHECK(cuda::parse_conv_impl("cudnn") == cuda::ConvImpl::Cudnn);
  CHECK(cuda::parse_conv_impl("own") == cuda::ConvImpl::Own);
  CHECK_ERROR_MENTIONS(cuda::parse_conv_impl("Own"), "MINIDL_CONV='Own'", "cudnn", "own");
  CHECK_ERROR_MENTIONS(cuda::parse_conv_impl("cudnn "), "MINIDL_CONV", "allowed values");
  CHECK(std::string(cuda::conv_impl_name(cuda::ConvImpl::Own)) == "own");
  CHECK(std::string(cuda::conv_impl_name(cuda::ConvImpl::Cudnn)) == "cudnn");
}

TEST_CASE("conv_own_chunk: as many samples as fit the column-buffer bound, at least one, at most N") {
  // ResNet stem at 224: 147 rows x 12544 columns x 4 bytes = 7.4 MB a sample.
  const cpu::ConvGeom stem = cpu::make_conv_geom(32, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3);
  const int64_t per_sample = 147 * 12544 * 4;
  CHECK(cuda::conv_own_chunk(stem) == cuda::kConvOwnWorkspaceBytes / per_sample);
  CHECK(cuda::conv_own_chunk(stem) * per_sample <= cuda::kConvOwnWorkspaceBytes);
  CHECK(cuda::conv_own_chunk(stem, per_sample * 3) == 3);
  CHECK(cuda::conv_own_chunk(stem, per_sample * 3 - 1) == 2);
  CHECK(cuda::conv_own_chunk(stem, 1) == 1);  // one sample even when it alone exceeds the bound
  const cpu::ConvGeom late = cpu::make_conv_geom(5, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1);
  CHECK(cuda::conv_own_chunk(late) == 5);  // small layers: the whole (small) batch
}
