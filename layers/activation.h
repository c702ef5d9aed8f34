// Parameter-free layers that reshape or gate their input: ReLU, Dropout, Flatten, Identity.
#pragma once
#include "layers/module.h"
#include "tensor/random.h"

namespace minidl {

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

// Training: zeroes each element with probability p and scales survivors by 1/(1-p), so the
// expected value is unchanged. Eval: the identity. Draws come from `gen`, which must
// outlive the module.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  const double p;

 private:
  Generator* gen_;
};

// Merges dims start_dim..end_dim into one: [N, C, H, W] -> [N, C*H*W] by default.
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  const int64_t start_dim, end_dim;
};

// Returns its input: a placeholder when replacing a layer (e.g. a classifier head).
class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace minidl
