// Elementwise ops. Binary ops broadcast (NumPy rules); their backward sums the gradient
// back down to each operand's shape (sum_to), which is the adjoint of broadcasting.
#include <cmath>

#include "autograd/op_util.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/copy_cast.h"
#include "kernels/cuda/elementwise.h"

namespace minidl {

using namespace detail;

namespace {

// On cuda, `kind` names the same function as `f` does on the cpu.
template <class F>
Tensor binary_forward(const char* op, cuda::BinaryOp kind, const Tensor& a, const Tensor& b, F f) {
  const Device dev = common_device(op, {&a, &b});
  check_float(op, a, "first input");
  check_float(op, b, "second input");
  check_same_dtype(op, a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  const Shape sa = broadcast_strides(a.shape(), a.strides(), shape);
  const Shape sb = broadcast_strides(b.shape(), b.strides(), shape);
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) {
    check_cuda_float32(op, a, "first input");
    Tensor out = Tensor::empty(shape, DType::Float32, Device::CUDA);
    cuda::binary_f32(kind, a.data<float>(), b.data<float>(), out.data<float>(), out.numel(),
                     cuda::make_offset_map<2>(shape, {sa, sb}, op));
    return out;
  }
#else
  (void)dev, (void)kind;
#endif
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_float(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    cpu::binary_broadcast(a.data<T>(), sa, b.data<T>(), sb, out.data<T>(), shape, [&](T x, T y) { return f(x, y); });
  });
  return out;
}

template <class F>
Tensor unary_forward(const char* op, cuda::UnaryOp kind, const Tensor& x, F f) {
  const Device dev = common_device(op, {&x});
  check_float(op, x);
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) {  // reads x in place through its strides: no contiguous copy
    check_cuda_float32(op, x);
    Tensor out = Tensor::empty(x.shape(), DType::Float32, Device::CUDA);
    cuda::unary_f32(kind, x.data<float>(), out.data<float>(), out.numel(),
                    cuda::make_offset_map<1>(x.shape(), {x.strides()}, op));
    return out;
  }
#else
  (void)dev, (void)kind;
#endif
  Tensor in = plain(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    cpu::unary_map(in.data<T>(), out.data<T>(), in.numel(), [&](T v) { return f(v); });
  });
  return out;
}

// For the in-place ops: a source in dst's storage with another layout (add_(x, x.t()), or
// a shifted window) would be read where other threads are writing (the gpu runs its threads
// in no fixed order, the cpu splits loops over OpenMP threads), so it is copied first. The
// same layout is safe: each element is read only by the thread that updates it.
Tensor unaliased_source(const Tensor& dst, const Tensor& src) {
  const bool overlaps =
      src.storage() == dst.storage() && (src.offset() != dst.offset() || src.strides() != dst.strides());
  return overlaps ? src.detach().clone() : src;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", cuda::BinaryOp::Add, a, b, [](auto x, auto y) { return x + y; });
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "add", {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), sum_to(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("sub", cuda::BinaryOp::Sub, a, b, [](auto x, auto y) { return x - y; });
  const Shape sa = a.shape(), sb = b.shape();
  const bool need_b = b.requires_grad();
  return record(out, "sub", {a, b}, [sa, sb, need_b](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), need_b ? sum_to(neg(g), sb) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", cuda::BinaryOp::Mul, a, b, [](auto x, auto y) { return x * y; });
  if (!needs_grad({&a, &b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Tensor sa = a.detach(), sb = b.detach();
  return record(out, "mul", {a, b}, [sa, sb, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
    return {need_a ? sum_to(mul(g, sb), sa.shape()) : Tensor(), need_b ? sum_to(mul(g, sa), sb.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("div", cuda::BinaryOp::Div, a, b, [](auto x, auto y) { return x / y; });
  if (!needs_grad({&a, &b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Tensor sa = a.detach(), sb = b.detach();
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
  return record(out, "div", {a, b}, [sa, sb, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
    return {need_a ? sum_to(div(g, sb), sa.shape()) : Tensor(),
            need_b ? sum_to(neg(div(mul(g, sa), mul(sb, sb))), sb.shape()) : Tensor()};
  });
}

Tensor neg(const Tensor& x) {
  Tensor out = unary_forward("neg", cuda::UnaryOp::Neg, x, [](auto v) { return -v; });
  return record(out, "neg", {x}, [](const Tensor& g) -> std::vector<Tensor> { return {neg(g)}; });
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward("exp", cuda::UnaryOp::Exp, x, [](auto v) { return std::exp(v); });
  Tensor saved = out.detach();  // d exp(x) = exp(x) dx
  return record(out, "exp", {x}, [saved](const Tensor& g) -> std::vector<Tensor> { return {mul(g, saved)}; });
}

Tensor log(const Tensor& x) {
  Tensor out = unary_forward("log", cuda::UnaryOp::Log, x, [](auto v) { return std::log(v); });
  Tensor saved = x.detach();  // d log(x) = dx / x
  return record(out, "log", {x}, [saved](const Tensor& g) -> std::vector<Tensor> { return {div(g, saved)}; });
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward("relu", cuda::UnaryOp::Relu, x, [](auto v) { return v > 0 ? v : decltype(v)(0); });
  Tensor saved = out.detach();  // gradient passes where the output is positive
  return record(out, "relu", {x}, [saved](const Tensor& g) -> std::vector<Tensor> {
    return {binary_forward("relu_backward", cuda::BinaryOp::ReluMask, g, saved,
                           [](auto gv, auto y) { return y > 0 ? gv : decltype(gv)(0); })};
  });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double s) { return add(a, scalar(s, a.dtype(), a.device())); }
Tensor operator-(const Tensor& a, double s) { return sub(a, scalar(s, a.dtype(), a.device())); }
Tensor operator*(const Tensor& a, double s) { return mul(a, scalar(s, a.dtype(), a.device())); }
Tensor operator/(const Tensor& a, double s) { return div(a, scalar(s, a.dtype(), a.device())); }
Tensor operator+(double s, const Tensor& a) { return add(scalar(s, a.dtype(), a.device()), a); }
Tensor operator-(double s, const Tensor& a) { return sub(scalar(s, a.dtype(), a.device()), a); }
Tensor operator*(double s, const Tensor& a) { return mul(scalar(s, a.dtype(), a.device()), a); }
Tensor operator/(double s, const Tensor& a) { return div(scalar(s, a.dtype(), a.device()), a); }

void add_(Tensor& dst, const Tensor& src, double alpha) {
  const Device dev = common_device("add_", {&dst, &src});
  check_same_dtype("add_", dst, src, "destination", "source");
  MINIDL_CHECK(dst.shape() == src.shape(), "add_: destination shape ", shape_str(dst.shape()),
               " differs from source shape ", shape_str(src.shape()));
  MINIDL_CHECK(dst.is_contiguous(), "add_: destination must be contiguous");
  const Tensor source = unaliased_source(dst, src);
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) {  // the source is read in place through its strides
    check_cuda_float32("add_", dst, "destination");
    cuda::axpy_f32(dst.data<float>(), source.data<float>(), static_cast<float>(alpha), dst.numel(),
                   cuda::make_offset_map<1>(source.shape(), {source.strides()}, "add_"));
    return;
  }
#else
  (void)dev;
#endif
  Tensor s = plain(source);
  dispatch_float(dst.dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    T* d = dst.data<T>();
    const T* p = s.data<T>();
    const T a = static_cast<T>(alpha);
    const int64_t n = dst.numel();
#pragma omp parallel for schedule(static) if (n > cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) d[i] += a * p[i];
  });
}

// Within one device a strided copy; across devices src moves to dst's device first (with
// no autograd record: copy_ is not differentiable) and is copied there.
void copy_(Tensor& dst, const Tensor& src) {
  check_same_dtype("copy_", dst, src, "destination", "source");
  MINIDL_CHECK(dst.shape() == src.shape(), "copy_: destination shape ", shape_str(dst.shape()),
               " differs from source shape ", shape_str(src.shape()));
  if (src.device() != dst.device()) {
    const Tensor moved = src.detach().to(dst.device());
    MINIDL_CHECK(moved.device() == dst.device(), "copy_: moving the source to ", device_name(dst.device()), " failed");
    copy_(dst, moved);
    return;
  }
  const Tensor source = unaliased_source(dst, src);  // overlapping windows copy as memmove does
#ifdef MINIDL_WITH_CUDA
  if (dst.device() == Device::CUDA) {
    cuda::strided_copy(source.raw_data(), source.strides(), dst.raw_data(), dst.strides(), dst.shape(),
                       dtype_size(dst.dtype()));
    return;
  }
#endif
  dispatch_storable(dst.dtype(), "copy_", [&](auto tag) {
    using T = decltype(tag);
    cpu::strided_copy(source.data<T>(), source.strides(), dst.data<T>(), dst.strides(), dst.shape());
  });
}

}  // namespace minidl
