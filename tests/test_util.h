// Helpers for the unit tests: relative comparison of tensors, vectors and scalars.
#pragma once
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "tensor/factory.h"

namespace minidl::testing {

// n values uniform in [lo, hi) from a Generator seeded with seed, as T: the tests' random
// operands (the same seed gives the same values on every machine).
template <class T>
std::vector<T> random_values(size_t n, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(g.uniform(lo, hi));
  return v;
}

// A path in the temp folder that no other test process uses at the same time: all of them
// live under one folder per process (the pid in its name), removed when the process exits,
// so suites of several builds can run side by side and none leaves files behind.
inline std::filesystem::path unique_temp(const std::string& name) {
  struct Root {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("minidl_tests_" + std::to_string(::getpid()));
    Root() { std::filesystem::create_directories(path); }
    ~Root() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Root root;
  return root.path / name;
}

// The error of one element pair: NaN against NaN and equal infinities match (0); NaN or
// infinity against anything else is an infinite error, never silently dropped by max().
inline double element_error(double a, double b, double scale) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0.0 : HUGE_VAL;
  if (std::isinf(a) || std::isinf(b)) return a == b ? 0.0 : HUGE_VAL;
  return std::abs(a - b) / scale;
}

// max_i |a_i - b_i| / max(|b_i|, floor): the project's relative error (floor guards zeros).
inline double max_rel_error(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-6) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, element_error(a[i], b[i], std::max(std::abs(b[i]), floor)));
  return worst;
}

inline double max_rel_error(const Tensor& a, const Tensor& b, double floor = 1e-6) {
  REQUIRE(a.shape() == b.shape());
  return max_rel_error(a.to_vector<double>(), b.to_vector<double>(), floor);
}

// Checks that `expr` throws minidl::Error whose message contains every one of `parts`.
#define CHECK_ERROR_MENTIONS(expr, ...)                                              \
  do {                                                                              \
    std::string _msg;                                                               \
    try {                                                                           \
      (void)(expr);                                                                 \
    } catch (const ::minidl::Error& e) {                                            \
      _msg = e.what();                                                              \
    }                                                                               \
    CHECK_MESSAGE(!_msg.empty(), "expected a minidl::Error from " #expr);           \
    for (const char* _part : {__VA_ARGS__})                                         \
      CHECK_MESSAGE(_msg.find(_part) != std::string::npos, "message '", _msg,        \
                    "' lacks '", _part, "'");                                       \
  } while (0)

}  // namespace minidl::testing
