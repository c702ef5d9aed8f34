// Row-wise log-softmax and cross-entropy with label smoothing on the GPU, float32 [N, C]
// logits, int64 labels on the device; the math of kernels/cpu/softmax.h. One warp per row,
// sums and the log-sum-exp in double (as the CPU); the batch mean is a fixed-order block
// reduction of per-row losses, so the loss never depends on scheduling.
#pragma once
#include <cstdint>

namespace minidl::cuda {

void log_softmax_forward(const float* x, int64_t N, int64_t C, float* y);
// y is the forward output (log-probabilities).
void log_softmax_backward(const float* dy, const float* y, int64_t N, int64_t C, float* dx);

// The first row whose label lies outside [0, C), if any (position -1: all labels valid).
struct BadLabel {
  int64_t position = -1;
  int64_t label = 0;
};

// Writes the log-probabilities into logp and the mean loss into *loss (one float on the
// device). Labels are checked on the device while the loss is computed (a bad row adds
// nothing and reads nothing out of range); the result of the check is copied back, so this
// call waits for the stream. The caller turns a bad label into an Error.
BadLabel cross_entropy_forward(const float* x, const int64_t* labels, int64_t N, int64_t C, double smoothing,
                               float* logp, float* loss);

// dx = (*scale) (softmax - q) / N, where *scale (one float on the device) is the incoming
// gradient of the scalar loss; labels must be valid (checked by the forward).
void cross_entropy_backward(const float* logp, const int64_t* labels, int64_t N, int64_t C, double smoothing,
                            const float* scale, float* dx);

}  // namespace minidl::cuda
