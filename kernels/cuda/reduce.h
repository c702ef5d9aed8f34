// CUDA sum reduction (float32 in and out, double accumulation). Plain C++; the kernels are
// in reduce.cu.
#pragma once
#include <cstdint>

#include "kernels/cuda/elementwise.h"

namespace minidl::cuda {

// out[o] = sum over r < n_red of x[out_map.offset(o) + red_map.offset(r)], for o < n_out;
// out is contiguous. out_map walks the kept dims of x, red_map the reduced ones (both with
// x's strides, so x may have any layout). Deterministic: the summation order depends only
// on the sizes (no atomics), so equal inputs give bit-identical sums on every run.
void sum_f32(const float* x, float* out, int64_t n_out, const OffsetMap<1>& out_map, int64_t n_red,
             const OffsetMap<1>& red_map);

}  // namespace minidl::cuda
