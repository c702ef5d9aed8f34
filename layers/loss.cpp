#include "layers/loss.h"

#include "autograd/ops.h"

namespace minidl {

CrossEntropyLoss::CrossEntropyLoss(double s) : label_smoothing(s) {
  MINIDL_CHECK(s >= 0 && s <= 1, "CrossEntropyLoss: label_smoothing must be in [0, 1], got ", s);
}

Tensor CrossEntropyLoss::forward(const Tensor& logits, const Tensor& labels) const {
  return cross_entropy(logits, labels, label_smoothing);
}

}  // namespace minidl
