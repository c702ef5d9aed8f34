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

// Simplifies a loop nest over `shape` walked by several operands (one stride vector each):
// drops size-1 dims, and merges dim d into d+1 when every operand steps through them as one
// (stride[d] == stride[d+1] * shape[d+1]). A contiguous tensor becomes one flat dim; a bias
// [1,C,1,1] broadcast over [N,C,H,W] becomes [N, C, H*W]. Keeps at least one dim.
inline void coalesce_dims(std::vector<int64_t>& shape, std::vector<std::vector<int64_t>*> strides) {
  std::vector<int64_t> s;
  std::vector<std::vector<int64_t>> st(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !s.empty();
    for (size_t k = 0; k < strides.size() && merge; ++k) merge = st[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      s.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k) st[k].back() = (*strides[k])[d];
    } else {
      s.push_back(shape[d]);
      for (size_t k = 0; k < strides.size(); ++k) st[k].push_back((*strides[k])[d]);
    }
  }
  if (s.empty()) {
    s.push_back(1);
    for (auto& v : st) v.push_back(0);
  }
  shape = std::move(s);
  for (size_t k = 0; k < strides.size(); ++k) *strides[k] = std::move(st[k]);
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
