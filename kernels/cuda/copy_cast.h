// CUDA copies between layouts and casts between dtypes, on one device. Plain C++; the
// kernels are in copy_cast.cu.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/elementwise.h"
#include "tensor/dtype.h"

namespace minidl::cuda {

// dst = src element by element over `shape`, each side with its own strides (in elements),
// moving elem_size bytes (2, 4 or 8) per element: a layout change for any dtype of that size.
// Any number of dims: layouts deeper than kMaxDims (after merging) are copied one slab of
// the leading dims at a time, so contiguous() works on every tensor.
void strided_copy(const void* src, const std::vector<int64_t>& src_strides, void* dst,
                  const std::vector<int64_t>& dst_strides, const std::vector<int64_t>& shape, size_t elem_size);

// dst[i] = (to) src[offset of i] for i < n; dst contiguous; from/to each float32, float64
// or int64. Float -> int64 truncates toward zero (as C++ and PyTorch do); a NaN, infinite
// or out-of-range value (outside [-2^63, 2^63)) is an Error naming `op`, its flat index and
// value, as on the CPU (this check waits for the GPU).
void cast(DType from, const void* src, DType to, void* dst, int64_t n, const OffsetMap<1>& map, const char* op);

}  // namespace minidl::cuda
