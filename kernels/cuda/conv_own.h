// Our own GPU convolution, the teaching peer of cuDNN (MINIDL_CONV=own, conv_select.h): the
// same lowering as the CPU's kernels/cpu/conv2d, im2col + GEMM, on our tiled SGEMM.
//   forward:  col_n = im2col(x_n) [C*KH*KW, OH*OW];  y_n = W [O, C*KH*KW] col_n
//   dX:       col_n = W^T dy_n;                      dx_n = col2im(col_n)
//   dW:       dW = sum_n dy_n col_n^T;               db = sum of dy over n, i, j
// Samples go through in chunks whose column buffer stays within kConvOwnWorkspaceBytes (at
// least one sample), never a buffer for the whole batch; a 1x1 stride-1 unpadded conv needs
// none (x is its own column matrix). Raw float32 device pointers, contiguous NCHW, so the
// benchmark can call these directly; all work is queued on cuda::stream().
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/conv2d.h"  // ConvGeom

namespace minidl::cuda {

// The column buffer's bound (bytes). Large enough that a chunk of ResNet's big early layers
// keeps the GPU busy, small next to a GPU's memory.
constexpr int64_t kConvOwnWorkspaceBytes = int64_t{64} << 20;

// Samples per chunk: as many as keep chunk * C*KH*KW * OH*OW floats within max_bytes, at
// least 1 and at most N (plain C++, CPU-tested).
inline int64_t conv_own_chunk(const cpu::ConvGeom& g, int64_t max_bytes = kConvOwnWorkspaceBytes) {
  const int64_t per_sample = g.col_rows() * g.col_cols() * static_cast<int64_t>(sizeof(float));
  if (per_sample <= 0) return std::max<int64_t>(g.N, 1);
  return std::clamp<int64_t>(max_bytes / per_sample, 1, std::max<int64_t>(g.N, 1));
}

// y = conv(x, w) + bias (bias may be nullptr); y overwritten. workspace_bytes bounds the
// column buffer (the tests shrink it to force chunks with a remainder).
void conv_own_forward(const cpu::ConvGeom& g, const float* x, const float* w, const float* bias, float* y,
                      int64_t workspace_bytes = kConvOwnWorkspaceBytes);
// dx overwritten.
void conv_own_backward_input(const cpu::ConvGeom& g, const float* dy, const float* w, float* dx,
                             int64_t workspace_bytes = kConvOwnWorkspaceBytes);
// dw and db overwritten; either may be nullptr (not wanted).
void conv_own_backward_weight(const cpu::ConvGeom& g, const float* dy, const float* x, float* dw, float* db,
                              int64_t workspace_bytes = kConvOwnWorkspaceBytes);

// The lowering's two halves for a run of `count` samples (col holds count blocks of
// [C*KH*KW, OH*OW]); exposed for the tests. col2im overwrites x (each x element gathers its
// column entries: no atomics, deterministic).
void im2col_gpu(const cpu::ConvGeom& g, const float* x, int64_t count, float* col);
void col2im_gpu(const cpu::ConvGeom& g, const float* col, int64_t count, float* x);

}  // namespace minidl::cuda
