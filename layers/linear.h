// Linear: y = x W^T + b over the last dim of x ([N, in] or [..., in]).
// Init is torch's default: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
#pragma once
#include "layers/module.h"
#include "tensor/random.h"

namespace minidl {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator(),
         DType dtype = DType::Float32);

  Tensor forward(const Tensor& x) override;

  const int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined when built with bias = false
};

}  // namespace minidl
