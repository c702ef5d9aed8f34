#include "layers/linear.h"

#include "autograd/ops.h"
#include "layers/init.h"

namespace minidl {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen, DType dtype)
    : Module("Linear"), in_features(in), out_features(out) {
  MINIDL_CHECK(in > 0 && out > 0, "Linear: in_features and out_features must be > 0, got ", in, " and ", out);
  MINIDL_CHECK(is_floating_compute(dtype), "Linear: dtype must be float32 or float64, got ", dtype_name(dtype));
  Tensor w = Tensor::empty({out, in}, dtype);
  uniform_fan_in_(w, in, gen);
  weight = register_parameter("weight", w);
  if (with_bias) {
    Tensor b = Tensor::empty({out}, dtype);
    uniform_fan_in_(b, in, gen);
    bias = register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "Linear(", in_features, ", ", out_features,
               "): expected input [..., ", in_features, "], got ", shape_str(x.shape()));
  if (x.dim() == 2) return linear(x, weight, bias);
  // Fold every leading dim into one batch dim and unfold afterwards.
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor y = linear(x.reshape({x.numel() / in_features, in_features}), weight, bias);
  return y.reshape(out_shape);
}

}  // namespace minidl
