// Pooling layers over [N, C, H, W].
#pragma once
#include <optional>

#include "layers/module.h"

namespace minidl {

// Max over k x k windows; stride defaults to the kernel size (torch's stride=None).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel_size, std::optional<int64_t> stride = std::nullopt, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  const int64_t kernel_size, stride, padding;
};

// Averages each channel down to output_h x output_w. Only 1 x 1 (global average pooling,
// what ResNet uses) is implemented; any other size is an error at construction.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(int64_t output_size = 1) : AdaptiveAvgPool2d(output_size, output_size) {}
  AdaptiveAvgPool2d(int64_t output_h, int64_t output_w);
  Tensor forward(const Tensor& x) override;
};

}  // namespace minidl
