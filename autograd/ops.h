// Every differentiable op: forward computes with kernels/cpu, records a Node whose backward
// is written right beside it (one op, one place). Shapes are checked first; errors name the
// op and both shapes.
#pragma once
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace minidl {

// ---- elementwise, with NumPy broadcasting for the binary ones ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor relu(const Tensor& x);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
// With a scalar on either side (the scalar takes the tensor's dtype).
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// ---- reductions ----
Tensor sum(const Tensor& x);  // all elements -> 0-dim
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Sums x down to `shape` (the adjoint of broadcasting `shape` up to x's shape).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra ----
Tensor matmul(const Tensor& a, const Tensor& b);  // [M,K] x [K,N] -> [M,N]
// y = x W^T + b: x [N, in], weight [out, in], bias [out] (may be undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- convolution and normalisation ----
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};
// x [N,C,H,W], weight [O,C,KH,KW], bias [O] or undefined -> [N,O,OH,OW].
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt);
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0);

// Batch norm over [N,C,H,W] (or [N,C]) with PyTorch's semantics: training uses batch
// statistics and updates running_mean/var in place (momentum, unbiased var); eval uses them.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean, Tensor running_var,
                  bool training, double momentum = 0.1, double eps = 1e-5);
// Fused forms for ResNet: relu(batch_norm(x)) and relu(batch_norm(x) + identity) in one
// op and one pass over memory each way; the same values and gradients as the unfused ops.
Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                       Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5);
Tensor batch_norm_add_relu(const Tensor& x, const Tensor& identity, const Tensor& weight, const Tensor& bias,
                           Tensor running_mean, Tensor running_var, bool training, double momentum = 0.1,
                           double eps = 1e-5);

// Inference form of conv -> eval-mode batch norm [-> + identity] [-> relu] (ResNet's pattern)
// as one op: the batch norm is applied to each sample's conv output while it is still in
// cache (cpu::ConvEpilogue), with the same bits as conv2d followed by batch_norm /
// batch_norm_relu / batch_norm_add_relu in eval mode. CPU only, and only with nothing to
// differentiate (grad mode off, or no input requiring grad): it records no graph, so it
// raises an error otherwise. identity may be undefined.
Tensor conv2d_bn_eval(const Tensor& x, const Tensor& weight, const Tensor& conv_bias, const Conv2dOptions& opt,
                      const Tensor& bn_weight, const Tensor& bn_bias, const Tensor& running_mean,
                      const Tensor& running_var, double eps, const Tensor& identity, bool relu);

// ---- pooling, dropout ----
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);
Tensor adaptive_avg_pool2d_1x1(const Tensor& x);  // [N,C,H,W] -> [N,C,1,1]
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity when not training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen = default_generator());

// ---- losses ----
Tensor log_softmax(const Tensor& x, int64_t dim = 1);  // x [N, C], dim must be the class dim (1 or -1)
// Mean cross-entropy of logits [N, C] against int64 labels [N], with label smoothing.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);

// ---- in-place, outside autograd (optimizers, the engine, initialisers) ----
void add_(Tensor& dst, const Tensor& src, double alpha = 1.0);  // dst += alpha * src, same shape
void copy_(Tensor& dst, const Tensor& src);                     // same shape, any strides

}  // namespace minidl
