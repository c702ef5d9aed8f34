// Batch normalisation on the GPU, float32, x viewed as [N, C, HW]: the contracts and the math
// of kernels/cpu/batchnorm.h (training and eval, running statistics with the unbiased
// variance, the fused relu / residual+relu epilogue, relu's mask read from the output).
//
// Per-channel reductions (the statistics, and sum dy', sum dy' (x - mean) in backward) are
// split over `splits` blocks per channel (plan_channel_split); each block sums its chunk in
// double and reduces in a fixed tree order, and a second kernel adds the partial sums of a
// channel in order: no float atomics, so a result never depends on scheduling.
// The statistics are one pass of shifted sums in double, d = x - K with K the channel's first
// value: mean = K + E[d], var = E[d^2] - E[d]^2. The shift keeps E[d] near the spread of the
// data, so the subtraction loses nothing when |mean| >> std. Forward reads x twice (the
// sums, then the normalise sweep), backward reads dy and x twice.
#pragma once
#include <cstdint>
#include "kernels/cuda/host_device.h"


namespace minidl::cuda {

// Writes y (and the saved mean and invstd); updates running_mean/var when non-null.
// residual (same shape as x) may be nullptr.
void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, int64_t N, int64_t C, int64_t HW,
                             double eps, double momentum, float* y, float* save_mean, float* save_invstd,
                             float* running_mean, float* running_var, const float* residual, bool relu);

// Eval: normalises with the running statistics, and writes what backward treats as the
// constants: save_mean = running_mean, save_invstd = rsqrt(running_var + eps) (rounded to float).
void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* running_mean,
                            const float* running_var, int64_t N, int64_t C, int64_t HW, double eps, float* y,
                            float* save_mean, float* save_invstd, const float* residual, bool relu);

// As cpu::batchnorm_backward: dx, dgamma, dbeta, d_residual may each be nullptr; relu_out is
// the fused forward's output (dy masked where it is <= 0) or nullptr.
void batchnorm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* invstd,
                        int64_t N, int64_t C, int64_t HW, bool training, float* dx, float* dgamma, float* dbeta,
                        const float* relu_out, float* d_residual);

// How a channel's M values are shared among blocks: `splits` chunks of `chunk` values (the
// last one may be shorter, none is empty). Enough blocks in all to fill a GPU (about
// kTargetBlocks), but at least kMinPerBlock values per block. It depends on the shape only,
// so the summation order, and the result, is the same on every GPU.
struct ChannelSplit {
  int64_t splits;
  int64_t chunk;
};

inline ChannelSplit plan_channel_split(int64_t C, int64_t M) {
  constexpr int64_t kTargetBlocks = 1024, kMinPerBlock = 4096;
  if (C < 1 || M < 1) return {1, M > 0 ? M : 1};
  int64_t s = (kTargetBlocks + C - 1) / C;
  const int64_t by_size = (M + kMinPerBlock - 1) / kMinPerBlock;
  if (s > by_size) s = by_size;
  if (s < 1) s = 1;
  const int64_t chunk = (M + s - 1) / s;
  return {(M + chunk - 1) / chunk, chunk};
}

// Walks channel c's values j = j0, j0 + step, ... of x viewed as [N, C, HW]: value j sits at
// n = j / HW, i = j % HW, offset (n C + c) HW + i. The division happens once; each step adds
// the precomputed quotient and remainder of step / HW (a GPU divides 64-bit integers slowly).
struct ChannelWalk {
  int64_t off, i, HW, CHW, jump, di;
  MINIDL_HD ChannelWalk(int64_t c, int64_t C, int64_t hw, int64_t j0, int64_t step)
      : off(0), i(j0 % hw), HW(hw), CHW(C * hw), jump(0), di(step % hw) {
    off = ((j0 / hw) * C + c) * hw + i;
    jump = (step / hw) * CHW + di;
  }
  MINIDL_HD void next() {
    off += jump;
    i += di;
    if (i >= HW) {  // one more row: the next sample's block of this channel
      i -= HW;
      off += CHW - HW;
    }
  }
};

}  // namespace minidl::cuda
