// Parameter initialisation shared by the layers, following torch.nn's defaults.
#pragma once
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace minidl {

// fan_in of a weight [out, in, k...] = in * prod(k...): the inputs each output unit sums over.
int64_t fan_in(const Tensor& weight);

// uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch's default for Linear's weight and bias
// and for Conv2d's bias. (kaiming_uniform with a = sqrt(5) gives gain sqrt(2/(1+5)) =
// sqrt(1/3) and bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in), the same range.)
void uniform_fan_in_(Tensor& t, int64_t fan_in, Generator& gen);

}  // namespace minidl
