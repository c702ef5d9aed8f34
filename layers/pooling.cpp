#include "layers/pooling.h"

#include "autograd/ops.h"

namespace minidl {

MaxPool2d::MaxPool2d(int64_t k, std::optional<int64_t> s, int64_t p)
    : Module("MaxPool2d"), kernel_size(k), stride(s.value_or(k)), padding(p) {
  MINIDL_CHECK(kernel_size > 0, "MaxPool2d: kernel_size must be > 0, got ", kernel_size);
  MINIDL_CHECK(stride > 0, "MaxPool2d: stride must be > 0, got ", stride);
  // torch's rule: padding at most half the kernel, so every window touches the input.
  MINIDL_CHECK(padding >= 0 && 2 * padding <= kernel_size, "MaxPool2d: padding must be in [0, kernel_size/2] = [0, ",
               kernel_size / 2, "], got ", padding);
}

Tensor MaxPool2d::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4, "MaxPool2d: expected a 4-D input [N, C, H, W], got ", shape_str(x.shape()));
  return max_pool2d(x, kernel_size, stride, padding);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t h, int64_t w) : Module("AdaptiveAvgPool2d") {
  MINIDL_CHECK(h == 1 && w == 1, "AdaptiveAvgPool2d: only output size 1x1 is supported, got ", h, "x", w);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4, "AdaptiveAvgPool2d: expected a 4-D input [N, C, H, W], got ", shape_str(x.shape()));
  return adaptive_avg_pool2d_1x1(x);
}

}  // namespace minidl
