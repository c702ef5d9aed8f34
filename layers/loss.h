// CrossEntropyLoss: mean over the batch of -sum_c q_c log softmax(logits)_c, where
// q = (1 - s) * onehot(label) + s / C (label smoothing s), as torch.nn.CrossEntropyLoss.
#pragma once
#include "tensor/tensor.h"

namespace minidl {

class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(double label_smoothing = 0.0);
  // logits [N, C] float, labels [N] int64 -> 0-dim loss.
  Tensor forward(const Tensor& logits, const Tensor& labels) const;
  Tensor operator()(const Tensor& logits, const Tensor& labels) const { return forward(logits, labels); }
  const double label_smoothing;
};

}  // namespace minidl
