// Tensor factories. Random ones take a Generator (default: the process-wide one), so the
// same seed always gives the same numbers.
#pragma once
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace minidl {

// The constant factories take a device; the *_like ones use t's dtype and device.
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = Device::CPU);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// [start, end) in steps of step (step may be negative); at least one element.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Float32);
inline Tensor arange(int64_t n, DType dtype = DType::Float32) { return arange(0.0, double(n), 1.0, dtype); }
// Copies `values` into a new tensor of `shape` (default: 1-D). Sizes must agree.
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape = {});
// A zero-dimensional tensor holding one value.
Tensor scalar(double value, DType dtype = DType::Float32, Device device = Device::CPU);

Tensor randn(const Shape& shape, DType dtype = DType::Float32, Generator& gen = default_generator());
Tensor rand(const Shape& shape, double lo = 0.0, double hi = 1.0, DType dtype = DType::Float32,
            Generator& gen = default_generator());

// In-place initialisers (no autograd), as torch.nn.init defines them. The random ones run
// on the cpu (so a seed gives the same numbers on every device); fill_ works on both.
// Kaiming normal, fan_out mode, ReLU gain: std = sqrt(2 / fan_out), fan_out = size(0) * receptive field.
void kaiming_normal_fan_out_(Tensor& t, Generator& gen = default_generator());
void uniform_(Tensor& t, double lo, double hi, Generator& gen = default_generator());
void normal_(Tensor& t, double mean, double std, Generator& gen = default_generator());
void fill_(Tensor& t, double value);

}  // namespace minidl
