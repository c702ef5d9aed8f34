#include "tensor/parallel.h"

#include <omp.h>

#include "tensor/error.h"

namespace minidl {
void set_num_threads(int n) {
  MINIDL_CHECK(n >= 1, "set_num_threads: thread count must be >= 1, got ", n);
  omp_set_num_threads(n);
}
int get_num_threads() { return omp_get_max_threads(); }
}  // namespace minidl
