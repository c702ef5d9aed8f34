#include "layers/activation.h"

#include "autograd/ops.h"

namespace minidl {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Dropout::Dropout(double p_, Generator& gen) : Module("Dropout"), p(p_), gen_(&gen) {
  MINIDL_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), *gen_); }

Tensor Flatten::forward(const Tensor& x) { return x.flatten(start_dim, end_dim); }

}  // namespace minidl
