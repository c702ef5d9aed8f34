// Bad input must raise minidl::Error with a message that names the op and the shapes or
// dtypes at fault, so a user can find the mistake from the message alone.
#include <string>
#include <vector>

#include "kernels/cpu/pool.h"
#include "tensor/parallel.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {
Tensor f32(const Shape& s) { return zeros(s, DType::Float32); }
Tensor f64(const Shape& s) { return zeros(s, DType::Float64); }
Tensor i64(const Shape& s) { return zeros(s, DType::Int64); }
}  // namespace

TEST_CASE("errors: shape mismatches name the op and both shapes") {
  CHECK_ERROR_MENTIONS(add(f32({3, 4}), f32({5})), "add", "[3, 4]", "[5]", "broadcast");
  CHECK_ERROR_MENTIONS(mul(f32({2, 3}), f32({3, 2})), "mul", "[2, 3]", "[3, 2]");
  CHECK_ERROR_MENTIONS(sub(f32({7}), f32({3, 5})), "sub", "[7]", "[3, 5]");
  CHECK_ERROR_MENTIONS(div(f32({4, 1, 3}), f32({2, 4})), "div", "[4, 1, 3]", "[2, 4]");

  CHECK_ERROR_MENTIONS(matmul(f32({3, 4}), f32({5, 6})), "matmul", "[3, 4]", "[5, 6]");
  CHECK_ERROR_MENTIONS(matmul(f32({3, 4, 1}), f32({4, 6})), "matmul", "[3, 4, 1]");

  CHECK_ERROR_MENTIONS(linear(f32({3, 4}), f32({5, 6})), "linear", "[3, 4]", "[5, 6]");
  CHECK_ERROR_MENTIONS(linear(f32({3, 4}), f32({5, 4}), f32({4})), "linear", "bias", "[4]", "[5, 4]");

  CHECK_ERROR_MENTIONS(conv2d(f32({2, 3, 7, 7}), f32({4, 5, 3, 3})), "conv2d", "[2, 3, 7, 7]", "[4, 5, 3, 3]",
                       "channels");
  CHECK_ERROR_MENTIONS(conv2d(f32({2, 3, 7, 7}), f32({4, 3, 3, 3}), f32({3})), "conv2d", "bias", "[3]");
  CHECK_ERROR_MENTIONS(conv2d(f32({3, 7, 7}), f32({4, 3, 3, 3})), "conv2d", "[3, 7, 7]", "4 dims");

  Tensor x = f32({2, 3, 5, 5});
  CHECK_ERROR_MENTIONS(batch_norm(x, f32({4}), f32({3}), f32({3}), f32({3}), true), "batch_norm", "weight", "[4]",
                       "[3]", "[2, 3, 5, 5]");
  CHECK_ERROR_MENTIONS(batch_norm(x, f32({3}), f32({3}), f32({3}), f32({7}), true), "batch_norm", "running_var",
                       "[7]");
  CHECK_ERROR_MENTIONS(batch_norm(x, f32({3}), f32({3}), Tensor(), Tensor(), false), "batch_norm", "running_mean",
                       "required");
  CHECK_ERROR_MENTIONS(batch_norm(f32({2, 3, 5}), f32({3}), f32({3}), Tensor(), Tensor(), true), "batch_norm",
                       "[2, 3, 5]");
  CHECK_ERROR_MENTIONS(batch_norm(f32({1, 3}), f32({3}), f32({3}), Tensor(), Tensor(), true), "batch_norm",
                       "more than one value", "[1, 3]");

  CHECK_ERROR_MENTIONS(cross_entropy(f32({4, 3}), from_vector(std::vector<int64_t>{0, 1, 2, 0, 1})),
                       "cross_entropy", "[5]", "[4, 3]");
  CHECK_ERROR_MENTIONS(log_softmax(f32({4, 3}), 0), "log_softmax", "class dim");
  CHECK_ERROR_MENTIONS(log_softmax(f32({2, 4, 3})), "log_softmax", "[2, 4, 3]");

  CHECK_ERROR_MENTIONS(sum_to(f32({3, 4}), {5}), "sum_to", "[5]", "[3, 4]");
  Tensor y = f32({3, 4});
  CHECK_ERROR_MENTIONS(add_(y, f32({4, 3})), "add_", "[3, 4]", "[4, 3]");
  CHECK_ERROR_MENTIONS(copy_(y, f32({12})), "copy_", "[3, 4]", "[12]");
}

TEST_CASE("errors: labels out of range or of the wrong dtype") {
  CHECK_ERROR_MENTIONS(cross_entropy(f32({3, 4}), from_vector(std::vector<int64_t>{0, 4, 1})), "cross_entropy",
                       "label 4", "position 1", "4 classes");
  CHECK_ERROR_MENTIONS(cross_entropy(f32({3, 4}), from_vector(std::vector<int64_t>{0, 1, -1})), "cross_entropy",
                       "label -1", "position 2");
  CHECK_ERROR_MENTIONS(cross_entropy(f32({3, 4}), f32({3})), "cross_entropy", "labels", "int64", "float32");
  CHECK_ERROR_MENTIONS(cross_entropy(f32({3, 4}), from_vector(std::vector<int64_t>{0, 1, 2}), 1.5), "cross_entropy",
                       "label_smoothing", "1.5");
}

TEST_CASE("errors: dtype mismatches and non-float inputs name both dtypes") {
  CHECK_ERROR_MENTIONS(add(f32({3}), f64({3})), "add", "float32", "float64");
  CHECK_ERROR_MENTIONS(mul(f64({2, 2}), f32({2, 2})), "mul", "float64", "float32");
  CHECK_ERROR_MENTIONS(matmul(f32({2, 3}), f64({3, 2})), "matmul", "float32", "float64");
  CHECK_ERROR_MENTIONS(linear(f64({2, 3}), f32({4, 3})), "linear", "float64", "float32");
  CHECK_ERROR_MENTIONS(conv2d(f32({1, 2, 5, 5}), f64({3, 2, 3, 3})), "conv2d", "float32", "float64");
  CHECK_ERROR_MENTIONS(batch_norm(f32({2, 3}), f64({3}), f32({3}), Tensor(), Tensor(), true), "batch_norm", "float32",
                       "float64");

  CHECK_ERROR_MENTIONS(add(i64({3}), i64({3})), "add", "int64");
  CHECK_ERROR_MENTIONS(add(f32({3}), i64({3})), "add", "int64", "float32");
  CHECK_ERROR_MENTIONS(relu(i64({3})), "relu", "int64");
  CHECK_ERROR_MENTIONS(exp(i64({3})), "exp", "int64");
  CHECK_ERROR_MENTIONS(sum(i64({3})), "sum", "int64");
  CHECK_ERROR_MENTIONS(matmul(i64({2, 2}), i64({2, 2})), "matmul", "int64");
  CHECK_ERROR_MENTIONS(conv2d(i64({1, 1, 3, 3}), i64({1, 1, 1, 1})), "conv2d", "int64");
  CHECK_ERROR_MENTIONS(max_pool2d(i64({1, 1, 3, 3}), 2, 2), "max_pool2d", "int64");
  CHECK_ERROR_MENTIONS(log_softmax(i64({2, 3})), "log_softmax", "int64");
  CHECK_ERROR_MENTIONS(cross_entropy(i64({2, 3}), i64({2})), "cross_entropy", "int64");
  CHECK_ERROR_MENTIONS(dropout(i64({4}), 0.5, true), "dropout", "int64");
  CHECK_ERROR_MENTIONS(randn({3}, DType::Int64), "int64");
  CHECK_ERROR_MENTIONS(f32({3}).to(DType::BFloat16), "to", "bfloat16");
  CHECK_ERROR_MENTIONS(f32({3}).data<double>(), "data", "float64", "float32");
  CHECK_ERROR_MENTIONS(zeros({2}, DType::BFloat16), "fill_", "bfloat16");
}

TEST_CASE("errors: empty tensors and sizes below 1 are refused") {
  CHECK_ERROR_MENTIONS(from_vector(std::vector<float>{}), "from_vector", "empty");
  CHECK_ERROR_MENTIONS(from_vector(std::vector<float>{1, 2, 3}, {2, 2}), "from_vector", "3 values", "[2, 2]");
  CHECK_ERROR_MENTIONS(from_vector(std::vector<float>{1, 2}, {2, 0}), "from_vector", "[2, 0]");
  CHECK_ERROR_MENTIONS(zeros({3, 0}), "[3, 0]", ">= 1");
  CHECK_ERROR_MENTIONS(ones({0}), "[0]");
  CHECK_ERROR_MENTIONS(full({-2, 3}, 1.0), "[-2, 3]");
  CHECK_ERROR_MENTIONS(randn({4, -1}), "[4, -1]");
  CHECK_ERROR_MENTIONS(Tensor::empty({0, 5}), "Tensor::empty", "[0, 5]");
  CHECK_ERROR_MENTIONS(arange(0.0, 0.0, 1.0), "arange", "no element");
  CHECK_ERROR_MENTIONS(arange(0.0, 5.0, -1.0), "arange", "no element");
  CHECK_ERROR_MENTIONS(arange(0.0, 5.0, 0.0), "arange", "step");

  Tensor x = f32({3, 4});
  CHECK_ERROR_MENTIONS(x.reshape({0, 12}), "reshape", "[0, 12]");
  CHECK_ERROR_MENTIONS(x.reshape({5, 2}), "reshape", "[3, 4]", "[5, 2]");
  CHECK_ERROR_MENTIONS(x.view({-1, -1}), "view", "-1");
  CHECK_ERROR_MENTIONS(x.view({5, -1}), "view", "[5, -1]");
  CHECK_ERROR_MENTIONS(x.narrow(1, 0, 0), "narrow", "length");
}

TEST_CASE("errors: dims and ranges out of bounds name the dim and the shape") {
  Tensor x = f32({3, 4, 5});
  CHECK_ERROR_MENTIONS(sum(x, {3}), "sum", "dim 3", "3 dimension");
  CHECK_ERROR_MENTIONS(sum(x, {-4}), "sum", "dim -4");
  CHECK_ERROR_MENTIONS(sum(x, {1, -2}), "sum", "twice");
  CHECK_ERROR_MENTIONS(mean(x, {7}), "mean", "dim 7");
  CHECK_ERROR_MENTIONS(x.permute({0, 5, 1}), "permute", "dim 5");
  CHECK_ERROR_MENTIONS(x.permute({0, 1}), "permute", "[3, 4, 5]");
  CHECK_ERROR_MENTIONS(x.permute({0, 1, 1}), "permute", "repeated");
  CHECK_ERROR_MENTIONS(x.transpose(0, 3), "transpose", "dim 3");
  CHECK_ERROR_MENTIONS(x.slice(1, 2, 9), "slice", "[2, 9)", "[3, 4, 5]");
  CHECK_ERROR_MENTIONS(x.slice(1, 3, 3), "slice", "[3, 3)");
  CHECK_ERROR_MENTIONS(x.slice(0, -1, 2), "slice", "[-1, 2)");
  CHECK_ERROR_MENTIONS(x.slice(0, 0, 2, 0), "slice", "step");
  CHECK_ERROR_MENTIONS(x.slice(5, 0, 1), "slice", "dim 5");
  CHECK_ERROR_MENTIONS(x.narrow(2, 3, 4), "slice", "[3, 7)");
  CHECK_ERROR_MENTIONS(x.flatten(2, 1), "flatten", "start_dim");
  CHECK_ERROR_MENTIONS(x.size(3), "dim 3");
  CHECK_ERROR_MENTIONS(x.at({0, 4, 0}), "Tensor::at", "index 4", "[3, 4, 5]");
  CHECK_ERROR_MENTIONS(x.at({0, 0}), "Tensor::at", "2 entries", "[3, 4, 5]");
  CHECK_ERROR_MENTIONS(x.item(), "item", "[3, 4, 5]", "60");
}

TEST_CASE("errors: view of a non-contiguous tensor points to reshape") {
  Tensor x = f32({3, 4});
  CHECK_ERROR_MENTIONS(x.transpose(0, 1).view({12}), "view", "[4, 3]", "not contiguous", "reshape");
  CHECK_ERROR_MENTIONS(x.slice(1, 0, 4, 2).view({6}), "view", "[3, 2]", "not contiguous");
  Tensor t = x.transpose(0, 1);
  CHECK_ERROR_MENTIONS(fill_(t, 1.0), "fill_", "contiguous");
  CHECK_ERROR_MENTIONS(normal_(t, 0.0, 1.0), "normal_", "contiguous");
  CHECK_ERROR_MENTIONS(add_(t, f32({4, 3})), "add_", "contiguous");
}

TEST_CASE("errors: pooling and convolution geometry") {
  CHECK_ERROR_MENTIONS(conv2d(f32({1, 2, 3, 3}), f32({4, 2, 5, 5})), "conv2d", "kernel 5x5", "larger", "3x3");
  CHECK_ERROR_MENTIONS(conv2d(f32({1, 2, 3, 6}), f32({4, 2, 4, 1})), "conv2d", "kernel 4x1", "3x6");
  CHECK_ERROR_MENTIONS(conv2d(f32({1, 2, 5, 5}), f32({4, 2, 3, 3}), Tensor(), 0, 1), "conv2d", "stride", "(0, 0)");
  CHECK_ERROR_MENTIONS(conv2d(f32({1, 2, 5, 5}), f32({4, 2, 3, 3}), Tensor(), Conv2dOptions{1, -1, 0, 0}), "conv2d",
                       "stride", "(1, -1)");
  CHECK_ERROR_MENTIONS(conv2d(f32({1, 2, 5, 5}), f32({4, 2, 3, 3}), Tensor(), 1, -1), "conv2d", "padding", "-1");

  CHECK_ERROR_MENTIONS(max_pool2d(f32({1, 2, 3, 3}), 5, 1), "max_pool2d", "kernel 5x5", "larger", "3x3");
  CHECK_ERROR_MENTIONS(max_pool2d(f32({1, 2, 5, 5}), 3, 0), "max_pool2d", "stride");
  CHECK_ERROR_MENTIONS(max_pool2d(f32({1, 2, 5, 5}), 3, 2, 2), "max_pool2d", "padding", "half the kernel");
  CHECK_ERROR_MENTIONS(max_pool2d(f32({1, 2, 5, 5}), 3, 2, -1), "max_pool2d", "padding");
  CHECK_ERROR_MENTIONS(max_pool2d(f32({1, 2, 5, 5}), 0, 1), "max_pool2d", "kernel");
  CHECK_ERROR_MENTIONS(max_pool2d(f32({2, 5, 5}), 3, 2), "max_pool2d", "[2, 5, 5]");
  CHECK_ERROR_MENTIONS(adaptive_avg_pool2d_1x1(f32({2, 5})), "adaptive_avg_pool2d", "[2, 5]");
  // The argmax is an int32 index into a plane: a larger plane is refused, not overflowed
  // (checked on the geometry alone; such a tensor would need 8.6 GB).
  CHECK_ERROR_MENTIONS(cpu::make_pool_geom(1, 1, 46341, 46341, 3, 3, 2, 2, 1, 1), "max_pool2d", "46341x46341", "int32");
  CHECK_NOTHROW(cpu::make_pool_geom(1, 1, 46340, 46340, 3, 3, 2, 2, 1, 1));
}

TEST_CASE("errors: dropout probability, random ranges, thread counts, initialisers") {
  Tensor x = f32({5});
  CHECK_ERROR_MENTIONS(dropout(x, 1.0, true), "dropout", "[0, 1)", "1");
  CHECK_ERROR_MENTIONS(dropout(x, -0.1, true), "dropout", "-0.1");
  CHECK_ERROR_MENTIONS(dropout(x, 1.5, false), "dropout", "1.5");  // checked in eval mode too
  CHECK_ERROR_MENTIONS(rand({3}, 2.0, 1.0), "uniform_", "2", "1");
  Tensor t = f32({3});
  CHECK_ERROR_MENTIONS(normal_(t, 0.0, -1.0), "normal_", "std");
  CHECK_ERROR_MENTIONS(kaiming_normal_fan_out_(t), "kaiming_normal_fan_out_", "[3]");
  CHECK_ERROR_MENTIONS(set_num_threads(0), "set_num_threads", "0");
}

TEST_CASE("errors: an undefined Tensor is reported, not dereferenced") {
  Tensor u;
  CHECK_FALSE(u.defined());
  CHECK_ERROR_MENTIONS(u.shape(), "undefined Tensor");
  CHECK_ERROR_MENTIONS(u.numel(), "undefined Tensor");
  CHECK_ERROR_MENTIONS(u.item(), "undefined Tensor");
  CHECK_ERROR_MENTIONS(u.to_string(), "undefined Tensor");
  CHECK_ERROR_MENTIONS(u.backward(), "undefined Tensor");
  CHECK_ERROR_MENTIONS(add(u, f32({3})), "undefined Tensor");
  CHECK_ERROR_MENTIONS(add(f32({3}), u), "undefined Tensor");
  CHECK_ERROR_MENTIONS(relu(u), "undefined Tensor");
  CHECK_ERROR_MENTIONS(matmul(u, f32({3, 3})), "undefined Tensor");
  CHECK_ERROR_MENTIONS(conv2d(u, f32({1, 1, 1, 1})), "undefined Tensor");
  CHECK_ERROR_MENTIONS(conv2d(f32({1, 1, 3, 3}), u), "undefined Tensor");
  CHECK_ERROR_MENTIONS(cross_entropy(f32({2, 3}), u), "undefined Tensor");
  CHECK_ERROR_MENTIONS(u.reshape({1}), "undefined Tensor");
  CHECK_ERROR_MENTIONS(u.detach(), "undefined Tensor");
  CHECK_ERROR_MENTIONS(batch_norm(f32({2, 3}), u, f32({3}), Tensor(), Tensor(), true), "batch_norm", "weight",
                       "required");
}

TEST_CASE("errors: messages from the engine name the op and the problem") {
  Tensor w = f64({3});
  w.requires_grad_();
  Tensor y = w * 2.0;
  CHECK_ERROR_MENTIONS(y.backward(), "backward", "non-scalar", "[3]");
  CHECK_ERROR_MENTIONS(y.backward(f64({2})), "backward", "[2]", "[3]");
  CHECK_ERROR_MENTIONS(f64({3}).backward(), "backward", "does not require grad");
  CHECK_ERROR_MENTIONS(y.requires_grad_(), "requires_grad_", "leaf", "mul");
}

// Generator::randint(0) used to compute UINT64_MAX % 0 and die with SIGFPE; it must be a
// minidl::Error.
TEST_CASE("errors: randint(0) is refused") {
  Generator g(1);
  CHECK_ERROR_MENTIONS(g.randint(0), "randint");
}
