// Pooling and dropout on the GPU, float32, NCHW; the semantics of kernels/cpu/pool.h.
// max_pool2d: one thread per output walks its window in row-major order with the CPU's rule
//   (strict '>', the first NaN wins), so values and the saved argmax (int32, flat h*W+w in the
//   plane) are those of the CPU. Backward is a gather, one thread per input element: it adds
//   dy over the outputs whose window covers it and whose argmax is it, in increasing output
//   order -- the order the CPU's scatter adds them in, without atomics.
// global average pool: one warp per plane sums in double; backward spreads dy / HW.
// dropout: y = x * (keep ? scale : 0) with the keep-mask drawn on the host (ops_pool.cpp).
#pragma once
#include <cstdint>

#include "kernels/cpu/pool.h"  // PoolGeom
#include "kernels/cuda/host_device.h"


namespace minidl::cuda {

// Outputs lo..hi (inclusive; empty when lo > hi) along one axis whose windows contain input
// position h, for kernel K, stride S, padding P and O outputs. Window o spans
// o S - P .. o S - P + K - 1, so it contains h when h + P - K + 1 <= o S <= h + P.
struct IndexRange {
  int64_t lo, hi;
};
MINIDL_HD inline IndexRange covering_windows(int64_t h, int64_t K, int64_t S, int64_t P, int64_t O) {
  const int64_t first = h + P - K + 1;
  const int64_t lo = first <= 0 ? 0 : (first + S - 1) / S;
  const int64_t last = (h + P) / S;
  return {lo, last < O - 1 ? last : O - 1};
}

void maxpool2d_forward(const cpu::PoolGeom& g, const float* x, float* y, int32_t* argmax);
void maxpool2d_backward(const cpu::PoolGeom& g, const float* dy, const int32_t* argmax, float* dx);

void global_avgpool_forward(const float* x, int64_t NC, int64_t HW, float* y);
void global_avgpool_backward(const float* dy, int64_t NC, int64_t HW, float* dx);

// y[i] = x[i] * (keep[i] ? scale : 0): dropout's forward (x) and backward (the gradient).
void dropout_apply(const float* x, const uint8_t* keep, float scale, int64_t n, float* y);

}  // namespace minidl::cuda
