// Elementwise float32 kernels: one thread per output element in a grid-stride loop, with
// int64 indices; inputs are read through an OffsetMap (any strides, broadcasting).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"

namespace minidl::cuda {

namespace {

constexpr int kThreads = 256;

struct AddF { __device__ float operator()(float x, float y) const { return __fadd_rn(x, y); } };
struct SubF { __device__ float operator()(float x, float y) const { return __fsub_rn(x, y); } };
struct MulF { __device__ float operator()(float x, float y) const { return __fmul_rn(x, y); } };
struct DivF { __device__ float operator()(float x, float y) const { return __fdiv_rn(x, y); } };
struct ReluMaskF { __device__ float operator()(float g, float y) const { return y > 0.f ? g : 0.f; } };

struct NegF { __device__ float operator()(float v) const { return -v; } };
struct ExpF { __device__ float operator()(float v) const { return expf(v); } };
struct LogF { __device__ float operator()(float v) const { return logf(v); } };
// NaN > 0 is false, so NaN maps to 0 as on the CPU.
struct ReluF { __device__ float operator()(float v) const { return v > 0.f ? v : 0.f; } };

template <class F>
__global__ void binary_kernel(const float* a, const float* b, float* out, int64_t n, OffsetMap<2> map, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t o[2];
    map.offsets(i, o);
    out[i] = f(a[o[0]], b[o[1]]);
  }
}

template <class F>
__global__ void unary_kernel(const float* x, float* out, int64_t n, OffsetMap<1> map, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    out[i] = f(x[map.offset(i)]);
}

__global__ void axpy_kernel(float* dst, const float* src, float alpha, int64_t n, OffsetMap<1> map) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    dst[i] = __fadd_rn(dst[i], __fmul_rn(alpha, src[map.offset(i)]));
}

template <class F>
void launch_binary(const float* a, const float* b, float* out, int64_t n, const OffsetMap<2>& map, F f) {
  binary_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(a, b, out, n, map, f);
  MINIDL_CUDA_CHECK_LAUNCH("binary_kernel");
}

template <class F>
void launch_unary(const float* x, float* out, int64_t n, const OffsetMap<1>& map, F f) {
  unary_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x, out, n, map, f);
  MINIDL_CUDA_CHECK_LAUNCH("unary_kernel");
}

}  // namespace

// The explicitly rounded intrinsics (__fadd_rn etc.) keep nvcc from fusing a multiply and
// an add of neighbouring ops into one FMA, so each op rounds exactly like the CPU's.
void binary_f32(BinaryOp op, const float* a, const float* b, float* out, int64_t n, const OffsetMap<2>& map) {
  if (n <= 0) return;
  switch (op) {
    case BinaryOp::Add: return launch_binary(a, b, out, n, map, AddF{});
    case BinaryOp::Sub: return launch_binary(a, b, out, n, map, SubF{});
    case BinaryOp::Mul: return launch_binary(a, b, out, n, map, MulF{});
    case BinaryOp::Div: return launch_binary(a, b, out, n, map, DivF{});
    case BinaryOp::ReluMask: return launch_binary(a, b, out, n, map, ReluMaskF{});
  }
  throw Error("binary_f32: unknown op");
}

void unary_f32(UnaryOp op, const float* x, float* out, int64_t n, const OffsetMap<1>& map) {
  if (n <= 0) return;
  switch (op) {
    case UnaryOp::Neg: return launch_unary(x, out, n, map, NegF{});
    case UnaryOp::Exp: return launch_unary(x, out, n, map, ExpF{});
    case UnaryOp::Log: return launch_unary(x, out, n, map, LogF{});
    case UnaryOp::Relu: return launch_unary(x, out, n, map, ReluF{});
  }
  throw Error("unary_f32: unknown op");
}

void axpy_f32(float* dst, const float* src, float alpha, int64_t n, const OffsetMap<1>& map) {
  if (n <= 0) return;
  axpy_kernel<<<grid_for(n, kThreads), kThreads, 0, stream()>>>(dst, src, alpha, n, map);
  MINIDL_CUDA_CHECK_LAUNCH("axpy_kernel");
}

}  // namespace minidl::cuda
