// Helpers for the batch-norm kernel tests: seeded normal data and the error measure the
// kernels are judged by (tests/test_bn_fast.cpp and tests/test_fused_ops.cpp).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensor/factory.h"
#include "test_util.h"

namespace minidl::bn_test {

// n values offset + scale * N(0, 1) from a seeded generator.
template <class T>
std::vector<T> normal_values(int64_t n, uint64_t seed, double offset = 0, double scale = 1) {
  Generator g(seed);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(offset + scale * g.normal());
  return v;
}

// max |a - b| / max |b|: the error relative to the tensor's scale (dx has entries near zero
// whose own relative error means nothing).
template <class T>
double scaled_error(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  double scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::isfinite(double(b[i]))) scale = std::max(scale, std::abs(double(b[i])));
  double worst = 0;  // element_error: NaN or infinity on one side only is an infinite error
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, testing::element_error(a[i], b[i], scale));
  return worst;
}

}  // namespace minidl::bn_test
