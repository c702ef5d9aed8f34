// The deterministic parameter fill of scripts/golden_fill.py, in C++: same hash, same
// float64 arithmetic in the same order, same float32 rounding, so PyTorch and minidl hold
// bit-identical weights for the parity tests without committing 100 MB of them.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace minidl::testing {

inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

inline double golden_uniform01(uint64_t key_hash, uint64_t i) {
  uint64_t x = key_hash + i + 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x = x ^ (x >> 31);
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Fills state-dict entry `key` (contiguous float32 or float64, or the int64 counter) in
// place. Values are rounded to float32 first, as the Python side does before PyTorch's
// .double(), so a float64 model holds exactly the float32 weights widened.
inline void golden_fill(const std::string& key, Tensor& t) {
  if (t.dtype() == DType::Int64) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = 0;
    return;
  }
  const uint64_t h = fnv1a64(key);
  const Shape& s = t.shape();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double u = golden_uniform01(h, uint64_t(i));
    double v;
    if (ends_with(key, "running_mean")) v = (2.0 * u - 1.0) * 0.1;
    else if (ends_with(key, "running_var")) v = u + 0.5;
    else if (s.size() == 4) v = (2.0 * u - 1.0) * std::sqrt(6.0 / double(s[1] * s[2] * s[3]));
    else if (s.size() == 2) v = (2.0 * u - 1.0) * (1.0 / std::sqrt(double(s[1])));
    else if (ends_with(key, "bn3.weight")) v = (u + 0.5) * 0.2;  // keeps the residual stream tame
    else if (ends_with(key, "weight")) v = u + 0.5;
    else v = (2.0 * u - 1.0) * 0.1;
    const float f = static_cast<float>(v);
    if (t.dtype() == DType::Float64) t.data<double>()[i] = f;
    else t.data<float>()[i] = f;
  }
}

}  // namespace minidl::testing
