// Deterministic sums: every output's terms are added in an order fixed by the sizes alone
// (no float atomics), in double, and rounded to float once at the end.
//   short reductions (n_red <= kSerialMax): one thread per output, terms in index order;
//   long ones: the terms of each output are cut into equal runs, one block per run adds its
//   run (strided per thread, then a shared-memory tree over the threads), and when there are
//   several runs a second kernel adds each output's run sums in run order.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

namespace {

constexpr int kThreads = 256;           // the tree below assumes exactly this block size
constexpr int64_t kSerialMax = 64;      // at most this many terms: one thread per output
constexpr int64_t kRunLength = 16384;   // terms per block run (64 per thread)
constexpr int64_t kMaxRuns = 4096;      // runs per output, so the run sums stay small

__global__ void sum_serial_kernel(const float* x, float* out, int64_t n_out, OffsetMap<1> out_map, int64_t n_red,
                                  OffsetMap<1> red_map) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < n_out; o += int64_t(blockDim.x) * gridDim.x) {
    const float* base = x + out_map.offset(o);
    double acc = 0;
    for (int64_t r = 0; r < n_red; ++r) acc += base[red_map.offset(r)];
    out[o] = float(acc);
  }
}

// Piece p = o * runs + c is run c (terms [c * len, (c + 1) * len)) of output o; its sum
// goes to sums[p] (float: the final output when runs == 1; double: a partial otherwise).
template <class OutT>
__global__ void sum_runs_kernel(const float* x, OutT* sums, int64_t n_out, OffsetMap<1> out_map, int64_t n_red,
                                OffsetMap<1> red_map, int64_t runs, int64_t len) {
  __shared__ double part[kThreads];
  const int64_t pieces = n_out * runs;
  for (int64_t p = blockIdx.x; p < pieces; p += gridDim.x) {
    const int64_t o = p / runs, c = p % runs;
    const int64_t begin = c * len, end = begin + len < n_red ? begin + len : n_red;
    const float* base = x + out_map.offset(o);
    double acc = 0;
    for (int64_t r = begin + threadIdx.x; r < end; r += kThreads) acc += base[red_map.offset(r)];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half >>= 1) {
      if (int(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
      __syncthreads();
    }
    if (threadIdx.x == 0) sums[p] = OutT(part[0]);
    __syncthreads();  // part[0] is read before the next piece overwrites part
  }
}

__global__ void sum_partials_kernel(const double* partial, float* out, int64_t n_out, int64_t runs) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < n_out; o += int64_t(blockDim.x) * gridDim.x) {
    double acc = 0;
    for (int64_t c = 0; c < runs; ++c) acc += partial[o * runs + c];
    out[o] = float(acc);
  }
}

}  // namespace

void sum_f32(const float* x, float* out, int64_t n_out, const OffsetMap<1>& out_map, int64_t n_red,
             const OffsetMap<1>& red_map) {
  if (n_out <= 0) return;
  if (n_red <= kSerialMax) {
    sum_serial_kernel<<<grid_for(n_out, kThreads), kThreads, 0, stream()>>>(x, out, n_out, out_map, n_red, red_map);
    MINIDL_CUDA_CHECK_LAUNCH("sum_serial_kernel");
    return;
  }
  int64_t runs = (n_red + kRunLength - 1) / kRunLength;
  if (runs > kMaxRuns) runs = kMaxRuns;
  const int64_t len = (n_red + runs - 1) / runs;
  // One block per piece while that fits the grid; the kernel's loop covers any rest.
  const int64_t pieces = n_out * runs;
  const unsigned blocks = unsigned(pieces < 65535LL * 32 ? pieces : 65535LL * 32);
  if (runs == 1) {
    sum_runs_kernel<float><<<blocks, kThreads, 0, stream()>>>(x, out, n_out, out_map, n_red, red_map, 1, len);
    MINIDL_CUDA_CHECK_LAUNCH("sum_runs_kernel");
    return;
  }
  // Handed back when this returns, with the kernels still queued: safe on the one stream.
  DeviceBuffer partial(size_t(pieces) * sizeof(double));
  double* p = partial.as<double>();
  sum_runs_kernel<double><<<blocks, kThreads, 0, stream()>>>(x, p, n_out, out_map, n_red, red_map, runs, len);
  MINIDL_CUDA_CHECK_LAUNCH("sum_runs_kernel");
  sum_partials_kernel<<<grid_for(n_out, kThreads), kThreads, 0, stream()>>>(p, out, n_out, runs);
  MINIDL_CUDA_CHECK_LAUNCH("sum_partials_kernel");
}

}  // namespace minidl::cuda
