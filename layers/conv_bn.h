// conv -> batch norm [-> + identity] -> [relu]: the step ResNet's blocks repeat. In eval mode
// with nothing to differentiate (inference under NoGradGuard), on the CPU, it runs as the
// fused op conv2d_bn_eval (the batch norm applied to each sample's conv output while it is
// in cache, one pass over memory fewer); otherwise as Conv2d then BatchNorm2d's forward /
// forward_relu / forward_add_relu. Both give the same bits. MINIDL_FUSE_CONV_BN=0 in the
// environment (read once) always takes the separate ops, for A/B timings (bench_train).
#pragma once
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"

namespace minidl {

// identity, when defined, needs relu (the only residual form ResNet uses).
Tensor conv_bn(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, bool relu, const Tensor& identity = Tensor());

// Whether conv_bn would take the fused op for these modules and this input right now.
bool conv_bn_fuses(const Conv2d& conv, const BatchNorm2d& bn, const Tensor& x);

}  // namespace minidl
