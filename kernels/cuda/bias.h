// Per-channel bias on the GPU, for a tensor viewed as [N, C, S] (contiguous float32):
// conv2d's [N, O, OH*OW] (S = OH*OW) and linear's [rows, features] (S = 1).
#pragma once
#include <cstdint>

namespace minidl::cuda {

// y[n, c, s] += b[c]
void bias_add(float* y, const float* b, int64_t N, int64_t C, int64_t S);
// db[c] = sum over n, s of dy[n, c, s] (overwritten), in a fixed order: bit-identical runs.
void bias_grad(const float* dy, float* db, int64_t N, int64_t C, int64_t S);

}  // namespace minidl::cuda
