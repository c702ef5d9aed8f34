// Element types. float32/float64 compute on the CPU today; bf16/fp16 are storage types
// reserved for the mixed-precision GPU path; int64 holds labels and num_batches_tracked.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/error.h"

namespace minidl {

enum class DType : uint8_t { Float32, Float64, BFloat16, Float16, Int64 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::BFloat16: return 2;
    case DType::Float16: return 2;
    case DType::Int64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::BFloat16: return "bfloat16";
    case DType::Float16: return "float16";
    case DType::Int64: return "int64";
  }
  return "?";
}

inline bool is_floating_compute(DType t) { return t == DType::Float32 || t == DType::Float64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }

// Calls f(T{}) with T = float or double for the given dtype: the one place where a runtime
// dtype becomes a compile-time kernel type. Other dtypes are a clear error naming the op.
template <class F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    default: break;
  }
  throw Error(detail::concat(op, ": dtype ", dtype_name(t), " is not supported on the CPU (float32 or float64 expected)"));
}

// Like dispatch_float, plus int64: for ops that only move or convert values (copies, casts).
template <class F>
decltype(auto) dispatch_storable(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(int64_t{});
    default: break;
  }
  throw Error(detail::concat(op, ": dtype ", dtype_name(t), " is not supported on the CPU (float32, float64 or int64 expected)"));
}

}  // namespace minidl
