#include "layers/conv_bn.h"

#include <cstdlib>
#include <cstring>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/error.h"

namespace minidl {

namespace {

bool fusion_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("MINIDL_FUSE_CONV_BN");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

}  // namespace

bool conv_bn_fuses(const Conv2d& conv, const BatchNorm2d& bn, const Tensor& x) {
  return fusion_enabled() && !bn.is_training() && x.defined() && x.device() == Device::CPU &&
         conv.weight.device() == Device::CPU && bn.weight.device() == Device::CPU &&
         !needs_grad({&x, &conv.weight, &conv.bias, &bn.weight, &bn.bias});
}

Tensor conv_bn(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, bool relu, const Tensor& identity) {
  MINIDL_CHECK(!identity.defined() || relu, "conv_bn: a residual identity is only supported with relu");
  if (!conv_bn_fuses(conv, bn, x) || (identity.defined() && needs_grad({&identity}))) {
    Tensor y = conv(x);
    if (identity.defined()) return bn.forward_add_relu(y, identity);
    return relu ? bn.forward_relu(y) : bn(y);
  }
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == conv.in_channels, "Conv2d(", conv.in_channels, ", ", conv.out_channels,
               ", kernel_size=", conv.kernel_size, "): expected input [N, ", conv.in_channels, ", H, W], got ",
               shape_str(x.shape()));
  MINIDL_CHECK(bn.num_features == conv.out_channels, "conv_bn: BatchNorm2d(", bn.num_features,
               ") after a conv with ", conv.out_channels, " output channels");
  const Conv2dOptions opt{conv.stride, conv.stride, conv.padding, conv.padding};
  return conv2d_bn_eval(x, conv.weight, conv.bias, opt, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps,
                        identity, relu);
}

}  // namespace minidl
