// Thread count for the OpenMP kernels. Set from --threads or OMP_NUM_THREADS; results are
// identical run to run for a given count (reductions are split and summed in a fixed order).
#pragma once

namespace minidl {
void set_num_threads(int n);
int get_num_threads();
}  // namespace minidl
