// The optimizers' per-parameter updates on the GPU (kernels/cuda/optim.cu): one launch per
// parameter tensor, float32, queued on cuda::stream(). The math and its rounding order are
// exactly the CPU loops' in layers/sgd.cpp and layers/adamw.cpp (each product and sum
// rounded on its own, no fused multiply-add; sqrt and division correctly rounded on both), so
// a step on either device gives the same bits (tests/test_cuda_train.cpp checks that exactly).
// This holds while layers/sgd.cpp and adamw.cpp are built for baseline x86-64 (no -mfma,
// no -march=native: GCC contracts a*b+c into an FMA whenever the target has one, even in
// ISO C++ mode) and without -ffast-math.
//
// Plain C++ (no CUDA types): layers/ calls these under #ifdef MINIDL_WITH_CUDA.
#pragma once
#include <cstdint>

namespace minidl::cuda {

// SGD, as layers/sgd.h states it, over n contiguous floats:
//   g = grad + weight_decay * w                       (when weight_decay != 0)
//   buf = g (first) | momentum * buf + keep * g       (when buf != nullptr; keep = 1 - dampening)
//   g = nesterov ? g + momentum * buf : buf           (when buf != nullptr)
//   w -= lr * g
struct SgdScalars {
  float lr = 0, weight_decay = 0, momentum = 0, keep = 1;
  bool first = false;     // the momentum buffer's first step: it is set, not blended
  bool nesterov = false;
};
void sgd_step_f32(float* w, const float* grad, float* momentum_buffer, int64_t n, const SgdScalars& k);

// AdamW, as layers/adamw.h states it, over n contiguous floats, with the step's scalars
// already computed in double on the host and rounded to float:
//   w *= decay;  m = b1 m + ob1 g;  v = b2 v + ob2 g g;
//   w -= step_size * m / (sqrt(v) * inv_bc2_sqrt + eps)
struct AdamWScalarsF32 {
  float decay, b1, ob1, b2, ob2, step_size, inv_bc2_sqrt, eps;
};
void adamw_step_f32(float* w, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
                    const AdamWScalarsF32& k);

// counter[0] += by, on the device: training-state counters that live beside the weights
// (BatchNorm2d's num_batches_tracked) advance without a round trip to the host.
void increment_i64(int64_t* counter, int64_t by);

}  // namespace minidl::cuda
