// bench_kernels --device cuda: the GPU tables (bench/gpu/kernels_cuda.cpp, compiled only in
// CUDA builds; bench_kernels.cpp hands over to it when it sees --device cuda).
#pragma once

namespace bench::gpu {

// Parses the GPU flags from argv, runs the tables, returns the process's exit code: 0 (also
// when no GPU is usable: the reason is printed and the run is skipped), 1 when a result
// disagrees with its peer or reference or a case fails, 2 for bad flags.
int run_kernels_cuda(int argc, char** argv);

}  // namespace bench::gpu
