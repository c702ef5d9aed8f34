// Random device buffers for the GPU benchmarks, filled on the GPU: a host generator plus a
// copy would cost seconds per case at the race sizes (hundreds of MB per tensor).
// Element i of a fill is a pure function of (seed, i), so a fill is the same on every GPU.
#include "bench/gpu/gpu_bench.h"
#include "kernels/cuda/cuda_check.h"

namespace bench::gpu {

namespace {

// splitmix64's finaliser: a bijection on 64 bits that spreads neighbouring inputs apart.
__device__ inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

__global__ void fill_uniform_kernel(float* dst, int64_t n, uint64_t seed, float lo, float span) {
  const uint64_t key = mix64(seed + 0x9e3779b97f4a7c15ULL);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    // The top 24 bits give u in [0, 1) exactly representable in float.
    const float u = float(mix64(key ^ uint64_t(i)) >> 40) * (1.0f / 16777216.0f);
    dst[i] = lo + span * u;
  }
}

}  // namespace

void fill_uniform(float* dst, int64_t n, uint64_t seed, float lo, float hi) {
  if (n <= 0) return;
  fill_uniform_kernel<<<minidl::cuda::grid_for(n), 256, 0, minidl::cuda::stream()>>>(dst, n, seed, lo, hi - lo);
  MINIDL_CUDA_CHECK_LAUNCH("bench fill_uniform");
}

}  // namespace bench::gpu
