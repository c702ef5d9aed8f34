// Walking strided tensors in row-major order: the one loop every layout-agnostic kernel
// (copy, broadcast, printing) is built on.
#pragma once
#include <cstdint>
#include <vector>

namespace minidl::cpu {

// Calls f(linear_index, offset) for every element of `shape`, where offset = sum(i_d * strides_d).
template <class F>
void for_each_offset(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, F&& f) {
  const size_t nd = shape.size();
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (nd == 0) {
    f(int64_t{0}, int64_t{0});
    return;
  }
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t lin = 0; lin < n; ++lin) {
    f(lin, off);
    // Increment the multi-index like an odometer, updating the offset incrementally.
    for (size_t d = nd; d-- > 0;) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

// Offset of row `row` when `shape` is viewed as rows of its last dimension.
inline int64_t row_offset(int64_t row, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t d = shape.size() - 1; d-- > 0;) {
    off += (row % shape[d]) * strides[d];
    row /= shape[d];
  }
  return off;
}

}  // namespace minidl::cpu
