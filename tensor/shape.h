// Shape helpers: sizes, contiguous strides, NumPy broadcasting, dim wrapping.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minidl {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3, 4]"

// Checks every size is >= 1 (minidl has no empty tensors); `what` names the caller.
void check_shape(const Shape& s, const char* what);

// NumPy rules: align trailing dims; each pair equal or one of them 1. `op` names the caller.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read `shape`/`strides` as if broadcast to `out` (0 along broadcast dims).
Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& out);

// Python-style dim: -1 is the last. Out of range is an error naming `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace minidl
