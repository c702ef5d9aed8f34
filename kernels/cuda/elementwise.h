// CUDA elementwise kernels (float32), and OffsetMap: the strided / broadcast index mapping
// they share with the reduction and copy kernels. Plain C++ (no CUDA types): the ops and the
// CPU tests include it; the kernels live in elementwise.cu, reduce.cu and copy_cast.cu.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "kernels/cpu/strided.h"
#include "tensor/error.h"
#include "tensor/shape.h"
#include "kernels/cuda/host_device.h"


namespace minidl::cuda {

// Loop nests deeper than this (after merging dims, see make_offset_map) are refused.
constexpr int kMaxDims = 8;

// Maps the row-major linear index of a loop nest over `sizes` to one element offset per
// operand: offset_k = sum_d i_d * strides[k][d], where i_d are the digits of the linear
// index in the mixed radix `sizes`. A stride of 0 repeats an operand along that dim
// (broadcasting). Small and trivially copyable: kernels take it by value.
template <int N>
struct OffsetMap {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  // linear must be below numel(): then what is left of it at dim 0 is that dim's index
  // without a division (a one-dim map, e.g. any contiguous tensor, divides nothing).
  MINIDL_HD void offsets(int64_t linear, int64_t (&out)[N]) const {
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d >= 1; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
    }
    for (int k = 0; k < N; ++k) out[k] += linear * strides[k][0];
  }
  // The offset of operand 0 alone (the common one-operand case).
  MINIDL_HD int64_t offset(int64_t linear) const {
    int64_t o[N];
    offsets(linear, o);
    return o[0];
  }
  // The number of linear indices the map covers.
  MINIDL_HD int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= sizes[d];
    return n;
  }
};

// Builds the map for `sizes` walked by N operands with the given strides (in elements, one
// per dim; 0 for broadcast dims). Dims are merged first (size-1 dims dropped, neighbours
// that every operand steps through as one joined), so a contiguous tensor is one dim and
// only genuinely strided layouts count against kMaxDims; beyond it the error names `op`.
template <int N>
OffsetMap<N> make_offset_map(std::vector<int64_t> sizes, std::array<std::vector<int64_t>, N> strides,
                             const char* op) {
  const Shape original = sizes;
  std::vector<std::vector<int64_t>*> ptrs;
  for (auto& s : strides) {
    MINIDL_CHECK(s.size() == sizes.size(), op, ": ", s.size(), " strides for the ", sizes.size(), " dims of ",
                 shape_str(original));
    ptrs.push_back(&s);
  }
  cpu::coalesce_dims(sizes, ptrs);
  MINIDL_CHECK(int64_t(sizes.size()) <= kMaxDims, op, ": the cuda kernels index at most ", kMaxDims,
               " dims, but shape ", shape_str(original), " with these strides needs ", sizes.size(),
               " after merging; make an input contiguous() first");
  OffsetMap<N> m;
  m.ndim = int(sizes.size());
  for (int d = 0; d < m.ndim; ++d) {
    m.sizes[d] = sizes[d];
    for (int k = 0; k < N; ++k) m.strides[k][d] = strides[k][d];
  }
  return m;
}

// out[i] = f(a[offset 0 of i], b[offset 1 of i]) for i < n; out is contiguous.
enum class BinaryOp {
  Add,
  Sub,
  Mul,
  Div,
  ReluMask,  // relu's backward: a (the gradient) where b (relu's output) > 0, else 0
};
void binary_f32(BinaryOp op, const float* a, const float* b, float* out, int64_t n, const OffsetMap<2>& map);

// out[i] = f(x[offset of i]) for i < n; out is contiguous.
enum class UnaryOp { Neg, Exp, Log, Relu };
void unary_f32(UnaryOp op, const float* x, float* out, int64_t n, const OffsetMap<1>& map);

// dst[i] += alpha * src[offset of i] for i < n; dst is contiguous. Rounded like the CPU
// loop (a product, then a sum; no fused multiply-add), so results match it bit for bit.
void axpy_f32(float* dst, const float* src, float alpha, int64_t n, const OffsetMap<1>& map);

}  // namespace minidl::cuda
