// The bias kernels of bias.h.
#include "kernels/cuda/bias.h"

#include "kernels/cuda/cuda_check.h"

namespace minidl::cuda {

namespace {

__global__ void bias_add_kernel(float* __restrict__ y, const float* __restrict__ b, int64_t total, int64_t C,
                                int64_t S) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] += b[(i / S) % C];
}

constexpr int kReduceThreads = 256;

// One block per channel (grid-stride over channels). Each thread sums a fixed subset of the
// channel's N*S values, then the block adds the 256 partial sums as a tree: the order depends
// only on the sizes, never on timing. Sums in double, like the CPU's bias gradient and the
// GPU's sum(): a float running sum of a ResNet stem's 256*112*112/256 = 12544 values per
// thread can be off by up to ~1e-3 relative (same-signed values), far outside parity.
__global__ void bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t N, int64_t C,
                                 int64_t S) {
  __shared__ double part[kReduceThreads];
  const int64_t count = N * S;
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += kReduceThreads) {
      const int64_t n = i / S, s = i % S;
      acc += static_cast<double>(dy[(n * C + c) * S + s]);
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int half = kReduceThreads / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) db[c] = static_cast<float>(part[0]);
    __syncthreads();  // part[] is reused for the next channel
  }
}

}  // namespace

void bias_add(float* y, const float* b, int64_t N, int64_t C, int64_t S) {
  const int64_t total = N * C * S;
  if (total == 0) return;
  bias_add_kernel<<<grid_for(total), 256, 0, stream()>>>(y, b, total, C, S);
  MINIDL_CUDA_CHECK_LAUNCH("bias_add_kernel");
}

void bias_grad(const float* dy, float* db, int64_t N, int64_t C, int64_t S) {
  if (C == 0) return;
  const unsigned blocks = static_cast<unsigned>(C < 65535 ? C : 65535);
  bias_grad_kernel<<<blocks, kReduceThreads, 0, stream()>>>(dy, db, N, C, S);
  MINIDL_CUDA_CHECK_LAUNCH("bias_grad_kernel");
}

}  // namespace minidl::cuda
