// Pooling and dropout kernels (semantics: pool.h and kernels/cpu/pool.h).
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/pool.h"

namespace minidl::cuda {

namespace {

constexpr int kThreads = 256;

__device__ int64_t first_index() { return blockIdx.x * int64_t(blockDim.x) + threadIdx.x; }
__device__ int64_t grid_stride() { return int64_t(blockDim.x) * gridDim.x; }

// One thread per output (n, c, i, j): the window's max by the CPU's window_max rule.
__global__ void maxpool_forward_kernel(cpu::PoolGeom g, const float* x, float* y, int32_t* argmax, int64_t total) {
  for (int64_t o = first_index(); o < total; o += grid_stride()) {
    const int64_t j = o % g.OW, i = (o / g.OW) % g.OH, nc = o / (g.OW * g.OH);
    const float* plane = x + nc * g.H * g.W;
    const int64_t h0 = i * g.SH - g.PH, w0 = j * g.SW - g.PW;
    const int64_t h_end = min(h0 + g.KH, g.H), w_end = min(w0 + g.KW, g.W);
    float best = -INFINITY;
    int64_t at = -1;
    bool nan = false;
    for (int64_t h = max(h0, int64_t(0)); h < h_end && !nan; ++h)
      for (int64_t w = max(w0, int64_t(0)); w < w_end; ++w) {
        const float v = plane[h * g.W + w];
        if (at < 0 || v > best || v != v) {
          best = v;
          at = h * g.W + w;
          if (v != v) {
            nan = true;
            break;
          }
        }
      }
    y[o] = best;
    argmax[o] = static_cast<int32_t>(at);  // make_pool_geom guarantees H*W fits, and at >= 0
  }
}

// One thread per input (n, c, h, w): dx = the sum of dy over the outputs that chose it.
__global__ void maxpool_backward_kernel(cpu::PoolGeom g, const float* dy, const int32_t* argmax, float* dx,
                                        int64_t total) {
  for (int64_t idx = first_index(); idx < total; idx += grid_stride()) {
    const int64_t w = idx % g.W, h = (idx / g.W) % g.H, nc = idx / (g.W * g.H);
    const IndexRange rh = covering_windows(h, g.KH, g.SH, g.PH, g.OH);
    const IndexRange rw = covering_windows(w, g.KW, g.SW, g.PW, g.OW);
    const int32_t self = static_cast<int32_t>(h * g.W + w);
    float s = 0.f;
    for (int64_t oh = rh.lo; oh <= rh.hi; ++oh)
      for (int64_t ow = rw.lo; ow <= rw.hi; ++ow) {
        const int64_t o = (nc * g.OH + oh) * g.OW + ow;
        if (argmax[o] == self) s = __fadd_rn(s, dy[o]);
      }
    dx[idx] = s;
  }
}

// One warp per plane: the sum in double (lanes, then a fixed butterfly), / HW.
__global__ void avgpool_forward_kernel(const float* x, int64_t NC, int64_t HW, float* y) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = grid_stride() / 32;
  for (int64_t p = first_index() / 32; p < NC; p += warps) {
    double s = 0;
    for (int64_t k = lane; k < HW; k += 32) s += x[p * HW + k];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) y[p] = float(s / double(HW));
  }
}

__global__ void avgpool_backward_kernel(const float* dy, int64_t NC, int64_t HW, float* dx) {
  const float count = float(HW);
  for (int64_t idx = first_index(); idx < NC * HW; idx += grid_stride()) dx[idx] = __fdiv_rn(dy[idx / HW], count);
}

__global__ void dropout_kernel(const float* x, const uint8_t* keep, float scale, int64_t n, float* y) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = __fmul_rn(x[i], keep[i] ? scale : 0.f);
}

}  // namespace

void maxpool2d_forward(const cpu::PoolGeom& g, const float* x, float* y, int32_t* argmax) {
  const int64_t total = g.N * g.C * g.OH * g.OW;
  if (total == 0) return;
  maxpool_forward_kernel<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(g, x, y, argmax, total);
  MINIDL_CUDA_CHECK_LAUNCH("maxpool_forward_kernel");
}

void maxpool2d_backward(const cpu::PoolGeom& g, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t total = g.N * g.C * g.H * g.W;
  if (total == 0) return;
  maxpool_backward_kernel<<<grid_for(total, kThreads), kThreads, 0, stream()>>>(g, dy, argmax, dx, total);
  MINIDL_CUDA_CHECK_LAUNCH("maxpool_backward_kernel");
}

void global_avgpool_forward(const float* x, int64_t NC, int64_t HW, float* y) {
  if (NC == 0) return;
  // 32 threads per plane; the block count is bounded by grid_for and the loop covers the rest.
  avgpool_forward_kernel<<<grid_for(NC * 32, kThreads), kThreads, 0, stream()>>>(x, NC, HW, y);
  MINIDL_CUDA_CHECK_LAUNCH("avgpool_forward_kernel");
}

void global_avgpool_backward(const float* dy, int64_t NC, int64_t HW, float* dx) {
  if (NC * HW == 0) return;
  avgpool_backward_kernel<<<grid_for(NC * HW, kThreads), kThreads, 0, stream()>>>(dy, NC, HW, dx);
  MINIDL_CUDA_CHECK_LAUNCH("avgpool_backward_kernel");
}

void dropout_apply(const float* x, const uint8_t* keep, float scale, int64_t n, float* y) {
  if (n == 0) return;
  dropout_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, keep, scale, n, y);
  MINIDL_CUDA_CHECK_LAUNCH("dropout_kernel");
}

}  // namespace minidl::cuda
