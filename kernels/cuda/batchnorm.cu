// Batch-norm kernels (the plan and the math: batchnorm.h and kernels/cpu/batchnorm.h).
// Element-wise float arithmetic goes through __fmul_rn / __fadd_rn / __fsub_rn so nvcc does
// not contract it into FMAs: the GPU rounds exactly as the CPU kernels do.
#include <cmath>

#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"

namespace minidl::cuda {

namespace {

constexpr int kThreads = 256;  // every kernel here; the block reduction assumes it

__device__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sums a and b over the block in a fixed tree order; the totals are valid in thread 0.
__device__ void block_sum2(double& a, double& b) {
  __shared__ double sa[kThreads / 32], sb[kThreads / 32];
  a = warp_sum(a);
  b = warp_sum(b);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    a = warp_sum(lane < kThreads / 32 ? sa[lane] : 0.0);
    b = warp_sum(lane < kThreads / 32 ? sb[lane] : 0.0);
  }
  __syncthreads();  // sa/sb are reused by the block's next work item
}

// Per-element terms of the forward statistics: d = x - K and d^2, K the channel's first value.
struct StatsTerms {
  const float* x;
  int64_t HW;
  __device__ double setup(int64_t c) const { return x[c * HW]; }
  __device__ void add(double K, int64_t off, double& a, double& b) const {
    const double d = double(x[off]) - K;
    a += d;
    b += d * d;
  }
};

// Per-element terms of backward: dy' and dy' (x - mean) (float product, as the CPU), with
// dy' = out > 0 ? dy : 0 under a fused relu.
struct GradTerms {
  const float *dy, *x, *mean, *relu_out;
  __device__ float setup(int64_t c) const { return mean[c]; }
  __device__ void add(float mu, int64_t off, double& a, double& b) const {
    const float d = relu_out && !(relu_out[off] > 0.f) ? 0.f : dy[off];
    a += d;
    b += __fmul_rn(d, __fsub_rn(x[off], mu));
  }
};

// part[2 w], part[2 w + 1] = the two sums over chunk s of channel c, work item w = c S + s.
template <class Terms>
__global__ void channel_partial_sums(Terms t, int64_t C, int64_t HW, int64_t M, int64_t S, int64_t chunk,
                                     double* part) {
  for (int64_t w = blockIdx.x; w < C * S; w += gridDim.x) {
    const int64_t c = w / S, s = w % S;
    const int64_t j1 = min(M, (s + 1) * chunk);
    const auto k = t.setup(c);
    double a = 0, b = 0;
    int64_t j = s * chunk + threadIdx.x;
    if (j < j1)
      for (ChannelWalk it(c, C, HW, j, blockDim.x); j < j1; j += blockDim.x, it.next()) t.add(k, it.off, a, b);
    block_sum2(a, b);
    if (threadIdx.x == 0) {
      part[2 * w] = a;
      part[2 * w + 1] = b;
    }
  }
}

// Channel c's two sums: its S partial sums added in order.
__device__ void channel_totals(const double* part, int64_t c, int64_t S, double& a, double& b) {
  a = 0;
  b = 0;
  if (!part) return;
  for (int64_t s = 0; s < S; ++s) {
    a += part[2 * (c * S + s)];
    b += part[2 * (c * S + s) + 1];
  }
}

// y = x * scale + shift per channel, with scale = gamma invstd and shift = beta - mean scale
// computed in double and rounded to float once (as the CPU).
__device__ void store_affine(int64_t c, double mean, double invstd, const float* gamma, const float* beta,
                             float* scale, float* shift) {
  const double s = double(gamma[c]) * invstd;
  scale[c] = float(s);
  shift[c] = float(double(beta[c]) - mean * s);
}

__global__ void finish_stats(const float* x, const double* part, int64_t C, int64_t HW, int64_t S, double M,
                             double eps, double momentum, const float* gamma, const float* beta, float* save_mean,
                             float* save_invstd, float* running_mean, float* running_var, float* scale,
                             float* shift) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(blockDim.x) * gridDim.x) {
    double sd, sdd;
    channel_totals(part, c, S, sd, sdd);
    const double md = sd / M, mean = double(x[c * HW]) + md;
    const double var = fmax(sdd / M - md * md, 0.0);
    const double invstd = 1.0 / sqrt(var + eps);
    save_mean[c] = float(mean);
    save_invstd[c] = float(invstd);
    // cpu::store_channel_stats: running stats in double, the variance made unbiased.
    if (running_mean) running_mean[c] = float((1 - momentum) * running_mean[c] + momentum * mean);
    if (running_var) {
      const double unbiased = M > 1 ? var * M / (M - 1) : var;
      running_var[c] = float((1 - momentum) * running_var[c] + momentum * unbiased);
    }
    store_affine(c, mean, invstd, gamma, beta, scale, shift);
  }
}

__global__ void eval_stats(const float* running_mean, const float* running_var, int64_t C, double eps,
                           const float* gamma, const float* beta, float* save_mean, float* save_invstd, float* scale,
                           float* shift) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(blockDim.x) * gridDim.x) {
    const double invstd = 1.0 / sqrt(double(running_var[c]) + eps);
    save_mean[c] = running_mean[c];
    save_invstd[c] = float(invstd);
    store_affine(c, running_mean[c], invstd, gamma, beta, scale, shift);
  }
}

// y = epilogue(x * scale[c] + shift[c]): + residual, then relu, each optional; the BN value
// is rounded to float before the residual is added, as in the unfused ops. I is uint32_t
// when the tensor is small enough (cheaper index division), else int64_t.
template <class I>
__global__ void normalise(const float* x, const float* scale, const float* shift, const float* residual, bool relu,
                          float* y, I total, I HW, I C) {
  for (I idx = blockIdx.x * I(blockDim.x) + threadIdx.x; idx < total; idx += I(blockDim.x) * gridDim.x) {
    const I c = (idx / HW) % C;
    float v = __fadd_rn(__fmul_rn(x[idx], scale[c]), shift[c]);
    if (residual) v = __fadd_rn(v, residual[idx]);
    if (relu) v = v > 0.f ? v : 0.f;
    y[idx] = v;
  }
}

// Backward per channel: dgamma = sum dy' xhat, dbeta = sum dy', and the dx coefficients
// coef = {g, k, e}: dx = g dy' - k (x - mean) - e, g = gamma invstd,
// k = g invstd sum(dy' xhat) / M, e = g sum(dy') / M (k = e = 0 in eval mode).
__global__ void finish_grad(const double* part, int64_t C, int64_t S, double M, bool training, const float* gamma,
                            const float* invstd, float* dgamma, float* dbeta, float* coef) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(blockDim.x) * gridDim.x) {
    double sum_dy, sum_dy_xmu;
    channel_totals(part, c, S, sum_dy, sum_dy_xmu);
    const double is = invstd[c];
    const double sum_dy_xhat = sum_dy_xmu * is;
    if (dgamma) dgamma[c] = float(sum_dy_xhat);
    if (dbeta) dbeta[c] = float(sum_dy);
    const double g = double(gamma[c]) * is;
    coef[3 * c] = float(g);
    coef[3 * c + 1] = training ? float(g * is * sum_dy_xhat / M) : 0.f;
    coef[3 * c + 2] = training ? float(g * sum_dy / M) : 0.f;
  }
}

template <class I>
__global__ void input_grads(const float* dy, const float* x, const float* mean, const float* relu_out,
                            const float* coef, bool training, float* dx, float* d_residual, I total, I HW, I C) {
  for (I idx = blockIdx.x * I(blockDim.x) + threadIdx.x; idx < total; idx += I(blockDim.x) * gridDim.x) {
    const I c = (idx / HW) % C;
    const float d = relu_out && !(relu_out[idx] > 0.f) ? 0.f : dy[idx];
    if (d_residual) d_residual[idx] = d;
    if (!dx) continue;
    const float gd = __fmul_rn(coef[3 * c], d);
    dx[idx] = training ? __fsub_rn(__fsub_rn(gd, __fmul_rn(coef[3 * c + 1], __fsub_rn(x[idx], mean[c]))), coef[3 * c + 2])
                       : gd;
  }
}

// Launches an element-wise kernel over [N, C, HW] with 32-bit indices when they suffice (the
// grid-stride step stays below 2^31 too, so idx + step cannot wrap).
template <class Launch>
void over_elements(int64_t total, Launch&& launch) {
  if (total < (int64_t(1) << 31)) launch(uint32_t{});
  else launch(int64_t{});
}

// The per-channel partial sums of `terms` into part (C * splits pairs).
template <class Terms>
void launch_partial_sums(const Terms& terms, int64_t C, int64_t HW, int64_t M, const ChannelSplit& sp, double* part) {
  const int64_t items = C * sp.splits;
  const unsigned blocks = static_cast<unsigned>(items < (int64_t(1) << 20) ? items : (int64_t(1) << 20));
  channel_partial_sums<<<blocks, kThreads, 0, stream()>>>(terms, C, HW, M, sp.splits, sp.chunk, part);
  MINIDL_CUDA_CHECK_LAUNCH("batchnorm channel_partial_sums");
}

void launch_normalise(const float* x, const float* scale, const float* shift, const float* residual, bool relu,
                      float* y, int64_t N, int64_t C, int64_t HW) {
  const int64_t total = N * C * HW;
  over_elements(total, [&](auto tag) {
    using I = decltype(tag);
    normalise<I><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(x, scale, shift, residual, relu, y, I(total),
                                                                        I(HW), I(C));
  });
  MINIDL_CUDA_CHECK_LAUNCH("batchnorm normalise");
}

}  // namespace

void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, int64_t N, int64_t C, int64_t HW,
                             double eps, double momentum, float* y, float* save_mean, float* save_invstd,
                             float* running_mean, float* running_var, const float* residual, bool relu) {
  const int64_t M = N * HW;
  if (C == 0 || M == 0) return;
  const ChannelSplit sp = plan_channel_split(C, M);
  const size_t part_bytes = sizeof(double) * 2 * size_t(C * sp.splits);
  DeviceBuffer scratch(part_bytes + sizeof(float) * 2 * size_t(C));
  double* part = static_cast<double*>(scratch.get());
  float* scale = reinterpret_cast<float*>(static_cast<char*>(scratch.get()) + part_bytes);
  float* shift = scale + C;
  launch_partial_sums(StatsTerms{x, HW}, C, HW, M, sp, part);
  finish_stats<<<grid_for(C, kThreads), kThreads, 0, stream()>>>(x, part, C, HW, sp.splits, double(M), eps, momentum,
                                                                  gamma, beta, save_mean, save_invstd, running_mean,
                                                                  running_var, scale, shift);
  MINIDL_CUDA_CHECK_LAUNCH("batchnorm finish_stats");
  launch_normalise(x, scale, shift, residual, relu, y, N, C, HW);
}

void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* running_mean,
                            const float* running_var, int64_t N, int64_t C, int64_t HW, double eps, float* y,
                            float* save_mean, float* save_invstd, const float* residual, bool relu) {
  if (C == 0) return;
  DeviceBuffer scratch(sizeof(float) * 2 * size_t(C));
  float* scale = static_cast<float*>(scratch.get());
  float* shift = scale + C;
  eval_stats<<<grid_for(C, kThreads), kThreads, 0, stream()>>>(running_mean, running_var, C, eps, gamma, beta,
                                                                save_mean, save_invstd, scale, shift);
  MINIDL_CUDA_CHECK_LAUNCH("batchnorm eval_stats");
  launch_normalise(x, scale, shift, residual, relu, y, N, C, HW);
}

void batchnorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* invstd,
                        int64_t N, int64_t C, int64_t HW, bool training, float* dx, float* dgamma, float* dbeta,
                        const float* relu_out, float* d_residual) {
  const int64_t M = N * HW;
  if (C == 0) return;
  // The sums feed dgamma, dbeta and (training only) dx; eval's dx = g dy' needs none.
  const bool need_sums = M > 0 && (dgamma || dbeta || (dx && training));
  const ChannelSplit sp = plan_channel_split(C, M);
  const size_t part_bytes = need_sums ? sizeof(double) * 2 * size_t(C * sp.splits) : 0;
  DeviceBuffer scratch(part_bytes + sizeof(float) * 3 * size_t(C));
  double* part = need_sums ? static_cast<double*>(scratch.get()) : nullptr;
  float* coef = reinterpret_cast<float*>(static_cast<char*>(scratch.get()) + part_bytes);
  if (need_sums) launch_partial_sums(GradTerms{dy, x, mean, relu_out}, C, HW, M, sp, part);
  finish_grad<<<grid_for(C, kThreads), kThreads, 0, stream()>>>(part, C, sp.splits, double(M), training, gamma, invstd,
                                                                 dgamma, dbeta, coef);
  MINIDL_CUDA_CHECK_LAUNCH("batchnorm finish_grad");
  if (!dx && !d_residual) return;
  const int64_t total = M * C;
  over_elements(total, [&](auto tag) {
    using I = decltype(tag);
    input_grads<I><<<grid_for(total, kThreads), kThreads, 0, stream()>>>(dy, x, mean, relu_out, coef, training, dx,
                                                                          d_residual, I(total), I(HW), I(C));
  });
  MINIDL_CUDA_CHECK_LAUNCH("batchnorm input_grads");
}

}  // namespace minidl::cuda
