// Conv2d: a square-kernel 2-D convolution over [N, C, H, W] (no groups or dilation).
// Init follows torchvision's ResNet: weight ~ N(0, 2 / fan_out) with fan_out = out * k * k
// (kaiming normal, fan_out mode, ReLU gain); a bias, if any, keeps torch's default
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in * k * k.
#pragma once
#include "layers/module.h"
#include "tensor/random.h"

namespace minidl {

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1, int64_t padding = 0,
         bool bias = true, Generator& gen = default_generator(), DType dtype = DType::Float32);

  Tensor forward(const Tensor& x) override;

  const int64_t in_channels, out_channels, kernel_size, stride, padding;
  Tensor weight;  // [out, in, k, k]
  Tensor bias;    // [out], undefined when built with bias = false
};

}  // namespace minidl
