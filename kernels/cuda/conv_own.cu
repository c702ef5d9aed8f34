// Our own GPU convolution (conv_own.h): im2col / col2im kernels and the GEMMs around them.
#include "kernels/cuda/conv_own.h"

#include "kernels/cuda/bias.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_tiled.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

namespace {

// Geometry as the kernels read it (a plain struct of int64 passed by value).
struct Geom {
  int64_t C, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
};
Geom to_geom(const cpu::ConvGeom& g) { return {g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW}; }

// One thread per column entry: col[n][(c*KH + p)*KW + q][i*OW + j] = x[n, c, i*SH - PH + p,
// j*SW - PW + q], or 0 in the padding. Consecutive threads take consecutive j: coalesced
// writes, and reads strided by SW.
__global__ void im2col_kernel(Geom g, const float* __restrict__ x, int64_t total, float* __restrict__ col) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t t = idx;
    const int64_t j = t % g.OW; t /= g.OW;
    const int64_t i = t % g.OH; t /= g.OH;
    const int64_t q = t % g.KW; t /= g.KW;
    const int64_t p = t % g.KH; t /= g.KH;
    const int64_t c = t % g.C;
    const int64_t n = t / g.C;
    const int64_t h = i * g.SH - g.PH + p, w = j * g.SW - g.PW + q;
    col[idx] = (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[((n * g.C + c) * g.H + h) * g.W + w] : 0.f;
  }
}

// One thread per x element (n, c, h, w): the sum of every column entry im2col copied it to,
// i.e. over (p, q) with h = i*SH - PH + p and w = j*SW - PW + q for some output (i, j).
__global__ void col2im_kernel(Geom g, const float* __restrict__ col, int64_t total, float* __restrict__ x) {
  const int64_t P = g.OH * g.OW, rows = g.C * g.KH * g.KW;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t t = idx;
    const int64_t w = t % g.W; t /= g.W;
    const int64_t h = t % g.H; t /= g.H;
    const int64_t c = t % g.C;
    const int64_t n = t / g.C;
    const float* cn = col + n * rows * P;
    float acc = 0.f;
    for (int64_t p = 0; p < g.KH; ++p) {
      const int64_t hi = h + g.PH - p;  // = i * SH for the output row i that reads (h, p)
      if (hi < 0 || hi % g.SH != 0 || hi / g.SH >= g.OH) continue;
      const int64_t i = hi / g.SH;
      for (int64_t q = 0; q < g.KW; ++q) {
        const int64_t wj = w + g.PW - q;
        if (wj < 0 || wj % g.SW != 0 || wj / g.SW >= g.OW) continue;
        const int64_t j = wj / g.SW;
        acc += cn[((c * g.KH + p) * g.KW + q) * P + i * g.OW + j];
      }
    }
    x[idx] = acc;
  }
}

// Runs body(n0, count, col) over the samples in chunks of conv_own_chunk(g, workspace_bytes)
// (the last holds the rest), col a column buffer with room for one chunk.
template <class Body>
void for_each_chunk(const cpu::ConvGeom& g, int64_t workspace_bytes, Body body) {
  const int64_t chunk = conv_own_chunk(g, workspace_bytes);
  DeviceBuffer col(static_cast<size_t>(std::min(chunk, g.N) * g.col_rows() * g.col_cols()) * sizeof(float));
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) body(n0, std::min(chunk, g.N - n0), col.as<float>());
}

}  // namespace

void im2col_gpu(const cpu::ConvGeom& g, const float* x, int64_t count, float* col) {
  const int64_t total = count * g.col_rows() * g.col_cols();
  if (total == 0) return;
  im2col_kernel<<<grid_for(total), 256, 0, stream()>>>(to_geom(g), x, total, col);
  MINIDL_CUDA_CHECK_LAUNCH("im2col_kernel");
}

void col2im_gpu(const cpu::ConvGeom& g, const float* col, int64_t count, float* x) {
  const int64_t total = count * g.C * g.H * g.W;
  if (total == 0) return;
  col2im_kernel<<<grid_for(total), 256, 0, stream()>>>(to_geom(g), col, total, x);
  MINIDL_CUDA_CHECK_LAUNCH("col2im_kernel");
}

void conv_own_forward(const cpu::ConvGeom& g, const float* x, const float* w, const float* bias, float* y,
                      int64_t workspace_bytes) {
  const int64_t K = g.col_rows(), P = g.col_cols(), xs = g.C * g.H * g.W, ys = g.O * P;
  if (g.pointwise()) {  // y_n = W x_n, every sample in one batched launch
    gemm_tiled_batched(false, false, g.O, P, K, 1.f, w, K, 0, x, P, xs, 0.f, y, P, ys, g.N);
  } else {
    for_each_chunk(g, workspace_bytes, [&](int64_t n0, int64_t cn, float* col) {
      im2col_gpu(g, x + n0 * xs, cn, col);
      gemm_tiled_batched(false, false, g.O, P, K, 1.f, w, K, 0, col, P, K * P, 0.f, y + n0 * ys, P, ys, cn);
    });
  }
  if (bias) bias_add(y, bias, g.N, g.O, P);
}

void conv_own_backward_input(const cpu::ConvGeom& g, const float* dy, const float* w, float* dx,
                             int64_t workspace_bytes) {
  const int64_t K = g.col_rows(), P = g.col_cols(), xs = g.C * g.H * g.W, ys = g.O * P;
  if (g.pointwise()) {  // dx_n = W^T dy_n
    gemm_tiled_batched(true, false, K, P, g.O, 1.f, w, K, 0, dy, P, ys, 0.f, dx, P, xs, g.N);
    return;
  }
  for_each_chunk(g, workspace_bytes, [&](int64_t n0, int64_t cn, float* col) {
    gemm_tiled_batched(true, false, K, P, g.O, 1.f, w, K, 0, dy + n0 * ys, P, ys, 0.f, col, P, K * P, cn);
    col2im_gpu(g, col, cn, dx + n0 * xs);
  });
}

void conv_own_backward_weight(const cpu::ConvGeom& g, const float* dy, const float* x, float* dw, float* db,
                              int64_t workspace_bytes) {
  const int64_t K = g.col_rows(), P = g.col_cols(), xs = g.C * g.H * g.W, ys = g.O * P;
  if (db) bias_grad(dy, db, g.N, g.O, P);
  if (!dw) return;
  if (g.N == 0) {
    memset_zero(dw, static_cast<size_t>(g.O * K) * sizeof(float));
    return;
  }
  // dW = sum_n dy_n col_n^T: one GEMM per sample, each adding onto the last (beta = 1) in
  // sample order on the one stream, so the sum is race-free and the same on every run.
  auto accumulate = [&](int64_t n, const float* col_n) {
    gemm_tiled(false, true, g.O, K, P, 1.f, dy + n * ys, P, col_n, P, n == 0 ? 0.f : 1.f, dw, K);
  };
  if (g.pointwise()) {
    for (int64_t n = 0; n < g.N; ++n) accumulate(n, x + n * xs);
    return;
  }
  for_each_chunk(g, workspace_bytes, [&](int64_t n0, int64_t cn, float* col) {
    im2col_gpu(g, x + n0 * xs, cn, col);
    for (int64_t s = 0; s < cn; ++s) accumulate(n0 + s, col + s * K * P);
  });
}

}  // namespace minidl::cuda
