#include "layers/init.h"

#include <cmath>

#include "tensor/factory.h"

namespace minidl {

int64_t fan_in(const Tensor& weight) {
  MINIDL_CHECK(weight.dim() >= 2, "fan_in: weight needs >= 2 dims [out, in, ...], got shape ",
               shape_str(weight.shape()));
  return weight.numel() / weight.size(0);
}

void uniform_fan_in_(Tensor& t, int64_t fan_in, Generator& gen) {
  MINIDL_CHECK(fan_in > 0, "uniform_fan_in_: fan_in must be > 0, got ", fan_in);
  const double bound = 1.0 / std::sqrt(double(fan_in));
  uniform_(t, -bound, bound, gen);
}

}  // namespace minidl
