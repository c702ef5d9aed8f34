#include "layers/conv2d.h"

#include "autograd/ops.h"
#include "layers/init.h"
#include "tensor/factory.h"

namespace minidl {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool with_bias, Generator& gen, DType dtype)
    : Module("Conv2d"), in_channels(in), out_channels(out), kernel_size(k), stride(s), padding(p) {
  MINIDL_CHECK(in > 0 && out > 0, "Conv2d: in_channels and out_channels must be > 0, got ", in, " and ", out);
  MINIDL_CHECK(k > 0, "Conv2d: kernel_size must be > 0, got ", k);
  MINIDL_CHECK(s > 0, "Conv2d: stride must be > 0, got ", s);
  MINIDL_CHECK(p >= 0, "Conv2d: padding must be >= 0, got ", p);
  MINIDL_CHECK(is_floating_compute(dtype), "Conv2d: dtype must be float32 or float64, got ", dtype_name(dtype));
  Tensor w = Tensor::empty({out, in, k, k}, dtype);
  kaiming_normal_fan_out_(w, gen);
  weight = register_parameter("weight", w);
  if (with_bias) {
    Tensor b = Tensor::empty({out}, dtype);
    uniform_fan_in_(b, in * k * k, gen);
    bias = register_parameter("bias", b);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == in_channels, "Conv2d(", in_channels, ", ", out_channels,
               ", kernel_size=", kernel_size, "): expected input [N, ", in_channels, ", H, W], got ",
               shape_str(x.shape()));
  return conv2d(x, weight, bias, stride, padding);
}

}  // namespace minidl
