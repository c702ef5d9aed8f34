// Log-softmax and cross-entropy kernels (the math: kernels/cpu/softmax.h). Every per-row
// quantity is computed as the CPU computes it: the max and the sums in double, exp and log
// in double, each output rounded to float once.
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/softmax_loss.h"

namespace minidl::cuda {

namespace {

constexpr int kThreads = 256;  // 8 warps, one row each

// Butterfly reductions over a warp: every lane ends with the same (bit-identical) result,
// since each pairwise step is commutative.
__device__ double warp_sum_all(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ double warp_max_all(double v) {
  for (int o = 16; o > 0; o >>= 1) {
    const double u = __shfl_xor_sync(0xffffffffu, v, o);
    v = u > v ? u : v;
  }
  return v;
}

// Grid-stride over rows, one warp per row (warp-uniform, so the shuffles see full warps).
__device__ int64_t first_row() { return (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32; }
__device__ int64_t row_stride() { return int64_t(blockDim.x) * gridDim.x / 32; }
__device__ int lane() { return threadIdx.x & 31; }

// log(sum_c exp(r_c)) = m + log(sum_c exp(r_c - m)), m = max_c r_c; the same in every lane.
__device__ double row_logsumexp(const float* r, int64_t C) {
  double m = -INFINITY;
  for (int64_t c = lane(); c < C; c += 32) m = double(r[c]) > m ? double(r[c]) : m;
  m = warp_max_all(m);
  double s = 0;
  for (int64_t c = lane(); c < C; c += 32) s += exp(double(r[c]) - m);
  return m + log(warp_sum_all(s));
}

__global__ void log_softmax_kernel(const float* x, int64_t N, int64_t C, float* y) {
  for (int64_t n = first_row(); n < N; n += row_stride()) {
    const float* r = x + n * C;
    const double lse = row_logsumexp(r, C);
    for (int64_t c = lane(); c < C; c += 32) y[n * C + c] = float(double(r[c]) - lse);
  }
}

// dx = dy - softmax * sum_c dy_c, softmax = exp(y).
__global__ void log_softmax_backward_kernel(const float* dy, const float* y, int64_t N, int64_t C, float* dx) {
  for (int64_t n = first_row(); n < N; n += row_stride()) {
    double s = 0;
    for (int64_t c = lane(); c < C; c += 32) s += dy[n * C + c];
    s = warp_sum_all(s);
    for (int64_t c = lane(); c < C; c += 32) dx[n * C + c] = float(double(dy[n * C + c]) - exp(double(y[n * C + c])) * s);
  }
}

// Per row: logp, and loss_n = -(1 - eps) logp[label] - eps / C sum_c logp_c. A label outside
// [0, C) is not read through; the smallest such row index goes into *bad (atomicMin on an
// integer: the same answer whatever the order).
__global__ void cross_entropy_rows_kernel(const float* x, const int64_t* labels, int64_t N, int64_t C,
                                          double smoothing, float* logp, double* row_loss,
                                          unsigned long long* bad) {
  for (int64_t n = first_row(); n < N; n += row_stride()) {
    const float* r = x + n * C;
    const double lse = row_logsumexp(r, C);
    double sum_all = 0;
    for (int64_t c = lane(); c < C; c += 32) {
      const float v = float(double(r[c]) - lse);
      logp[n * C + c] = v;
      sum_all += v;
    }
    sum_all = warp_sum_all(sum_all);
    if (lane() == 0) {
      const int64_t label = labels[n];
      if (label < 0 || label >= C) {
        atomicMin(bad, static_cast<unsigned long long>(n));
        row_loss[n] = 0;
      } else {
        const float at_label = float(double(r[label]) - lse);  // bit-equal to logp[n, label]
        row_loss[n] = -(1 - smoothing) * double(at_label) - smoothing / double(C) * sum_all;
      }
    }
  }
}

// One warp: *loss = mean of row_loss (lanes, then a fixed butterfly).
__global__ void mean_kernel(const double* row_loss, int64_t N, float* loss) {
  double s = 0;
  for (int64_t n = lane(); n < N; n += 32) s += row_loss[n];
  s = warp_sum_all(s);
  if (lane() == 0) *loss = float(s / double(N));
}

// dx = scale / N (softmax - q), q_c = (1 - eps) [c == label] + eps / C.
__global__ void cross_entropy_backward_kernel(const float* logp, const int64_t* labels, int64_t N, int64_t C,
                                              double smoothing, const float* scale, float* dx) {
  const double k = double(*scale) / double(N);
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < N * C;
       idx += int64_t(blockDim.x) * gridDim.x) {
    const int64_t n = idx / C, c = idx % C;
    const double q = (c == labels[n] ? 1 - smoothing : 0.0) + smoothing / double(C);
    dx[idx] = float(k * (exp(double(logp[idx])) - q));
  }
}

unsigned row_blocks(int64_t N) { return grid_for(N * 32, kThreads); }

}  // namespace

void log_softmax_forward(const float* x, int64_t N, int64_t C, float* y) {
  if (N == 0 || C == 0) return;
  log_softmax_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(x, N, C, y);
  MINIDL_CUDA_CHECK_LAUNCH("log_softmax_kernel");
}

void log_softmax_backward(const float* dy, const float* y, int64_t N, int64_t C, float* dx) {
  if (N == 0 || C == 0) return;
  log_softmax_backward_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(dy, y, N, C, dx);
  MINIDL_CUDA_CHECK_LAUNCH("log_softmax_backward_kernel");
}

BadLabel cross_entropy_forward(const float* x, const int64_t* labels, int64_t N, int64_t C, double smoothing,
                               float* logp, float* loss) {
  if (N == 0) return {};
  // Scratch: N per-row losses, then the bad-row slot (starts at N: none).
  DeviceBuffer scratch(sizeof(double) * (size_t(N) + 1));
  double* row_loss = scratch.as<double>();
  int64_t* bad = reinterpret_cast<int64_t*>(row_loss + N);
  fill_i64(bad, 1, N);
  cross_entropy_rows_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(
      x, labels, N, C, smoothing, logp, row_loss, reinterpret_cast<unsigned long long*>(bad));
  MINIDL_CUDA_CHECK_LAUNCH("cross_entropy_rows_kernel");
  mean_kernel<<<1, 32, 0, stream()>>>(row_loss, N, loss);
  MINIDL_CUDA_CHECK_LAUNCH("mean_kernel");
  BadLabel result;
  int64_t first_bad = N;
  copy_device_to_host(&first_bad, bad, sizeof(int64_t));
  if (first_bad < N) {
    result.position = first_bad;
    copy_device_to_host(&result.label, labels + first_bad, sizeof(int64_t));
  }
  return result;
}

void cross_entropy_backward(const float* logp, const int64_t* labels, int64_t N, int64_t C, double smoothing,
                            const float* scale, float* dx) {
  if (N * C == 0) return;
  cross_entropy_backward_kernel<<<grid_for(N * C, kThreads), kThreads, 0, stream()>>>(logp, labels, N, C, smoothing,
                                                                                       scale, dx);
  MINIDL_CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
}

}  // namespace minidl::cuda
