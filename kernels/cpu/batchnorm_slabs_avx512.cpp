// The slab batch norm's element-wise loops compiled with AVX-512 (this file gets the ISA
// flags from CMake); batchnorm_slabs.cpp calls them only after cpu_has_avx512(). No FMA
// contraction, so they round exactly like the baseline copy.
#pragma GCC optimize("fp-contract=off")
#include <cstdint>

#include "kernels/cpu/batchnorm_slabs.h"

namespace minidl::cpu {
namespace {
#include "kernels/cpu/batchnorm_slab_loops.inc"
}  // namespace

SlabLoops<float> slab_loops_avx512_f32() { return make_slab_loops<float>(); }
SlabLoops<double> slab_loops_avx512_f64() { return make_slab_loops<double>(); }

}  // namespace minidl::cpu
