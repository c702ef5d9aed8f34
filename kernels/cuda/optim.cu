// SGD and AdamW updates, one grid-stride launch per parameter tensor (the all-parameter fused
// launch is a later step). Every operation uses the explicitly rounded intrinsics
// (__fmul_rn, __fadd_rn, ...) so nvcc cannot contract a multiply and an add into an FMA: the
// CPU loops round each product and each sum separately, and parity with them is the point.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/optim.h"

namespace minidl::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void sgd_kernel(float* __restrict__ w, const float* __restrict__ dw, float* __restrict__ buf, int64_t n,
                           SgdScalars k) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    float g = dw[i];
    if (k.weight_decay != 0.f) g = __fadd_rn(g, __fmul_rn(k.weight_decay, w[i]));
    if (buf) {
      const float b = k.first ? g : __fadd_rn(__fmul_rn(k.momentum, buf[i]), __fmul_rn(k.keep, g));
      buf[i] = b;
      g = k.nesterov ? __fadd_rn(g, __fmul_rn(k.momentum, b)) : b;
    }
    w[i] = __fsub_rn(w[i], __fmul_rn(k.lr, g));
  }
}

__global__ void adamw_kernel(float* __restrict__ w, const float* __restrict__ dw, float* __restrict__ m,
                             float* __restrict__ v, int64_t n, AdamWScalarsF32 k) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float g = dw[i];
    const float wi = __fmul_rn(w[i], k.decay);
    const float mi = __fadd_rn(__fmul_rn(k.b1, m[i]), __fmul_rn(k.ob1, g));
    const float vi = __fadd_rn(__fmul_rn(k.b2, v[i]), __fmul_rn(__fmul_rn(k.ob2, g), g));
    const float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(vi), k.inv_bc2_sqrt), k.eps);
    w[i] = __fsub_rn(wi, __fdiv_rn(__fmul_rn(k.step_size, mi), denom));
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void increment_kernel(int64_t* counter, int64_t by) { counter[0] += by; }

}  // namespace

void sgd_step_f32(float* w, const float* grad, float* momentum_buffer, int64_t n, const SgdScalars& k) {
  if (n <= 0) return;
  sgd_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(w, grad, momentum_buffer, n, k);
  MINIDL_CUDA_CHECK_LAUNCH("sgd_kernel");
}

void adamw_step_f32(float* w, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                    const AdamWScalarsF32& k) {
  if (n <= 0) return;
  adamw_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(w, grad, exp_avg, exp_avg_sq, n, k);
  MINIDL_CUDA_CHECK_LAUNCH("adamw_kernel");
}

void increment_i64(int64_t* counter, int64_t by) {
  increment_kernel<<<1, 1, 0, stream()>>>(counter, by);
  MINIDL_CUDA_CHECK_LAUNCH("increment_kernel");
}

}  // namespace minidl::cuda
