// Elementwise ops. Binary ops broadcast (NumPy rules); their backward sums the gradient
// back down to each operand's shape (sum_to), which is the adjoint of broadcasting.
#include <cmath>

#include "autograd/op_util.h"
#include "kernels/cpu/elementwise.h"

namespace minidl {

using namespace detail;

namespace {

template <class F>
Tensor binary_forward(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_cpu(op, {&a, &b});
  check_float(op, a, "first input");
  check_float(op, b, "second input");
  check_same_dtype(op, a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_float(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    cpu::binary_broadcast(a.data<T>(), broadcast_strides(a.shape(), a.strides(), shape), b.data<T>(),
                          broadcast_strides(b.shape(), b.strides(), shape), out.data<T>(), shape,
                          [&](T x, T y) { return f(x, y); });
  });
  return out;
}

template <class F>
Tensor unary_forward(const char* op, const Tensor& x, F f) {
  check_cpu(op, {&x});
  check_float(op, x);
  Tensor in = plain(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    cpu::unary_map(in.data<T>(), out.data<T>(), in.numel(), [&](T v) { return f(v); });
  });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", a, b, [](auto x, auto y) { return x + y; });
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "add", {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), sum_to(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("sub", a, b, [](auto x, auto y) { return x - y; });
  const Shape sa = a.shape(), sb = b.shape();
  const bool need_b = b.requires_grad();
  return record(out, "sub", {a, b}, [sa, sb, need_b](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to(g, sa), need_b ? sum_to(neg(g), sb) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", a, b, [](auto x, auto y) { return x * y; });
  if (!needs_grad({&a, &b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Tensor sa = a.detach(), sb = b.detach();
  return record(out, "mul", {a, b}, [sa, sb, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
    return {need_a ? sum_to(mul(g, sb), sa.shape()) : Tensor(), need_b ? sum_to(mul(g, sa), sb.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("div", a, b, [](auto x, auto y) { return x / y; });
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
  Tensor out = unary_forward("neg", x, [](auto v) { return -v; });
  return record(out, "neg", {x}, [](const Tensor& g) -> std::vector<Tensor> { return {neg(g)}; });
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_forward("exp", x, [](auto v) { return std::exp(v); });
  Tensor saved = out.detach();  // d exp(x) = exp(x) dx
  return record(out, "exp", {x}, [saved](const Tensor& g) -> std::vector<Tensor> { return {mul(g, saved)}; });
}

Tensor log(const Tensor& x) {
  Tensor out = unary_forward("log", x, [](auto v) { return std::log(v); });
  Tensor saved = x.detach();  // d log(x) = dx / x
  return record(out, "log", {x}, [saved](const Tensor& g) -> std::vector<Tensor> { return {div(g, saved)}; });
}

Tensor relu(const Tensor& x) {
  Tensor out = unary_forward("relu", x, [](auto v) { return v > 0 ? v : decltype(v)(0); });
  Tensor saved = out.detach();  // gradient passes where the output is positive
  return record(out, "relu", {x}, [saved](const Tensor& g) -> std::vector<Tensor> {
    return {binary_forward("relu_backward", g, saved, [](auto gv, auto y) { return y > 0 ? gv : decltype(gv)(0); })};
  });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double s) { return add(a, scalar(s, a.dtype())); }
Tensor operator-(const Tensor& a, double s) { return sub(a, scalar(s, a.dtype())); }
Tensor operator*(const Tensor& a, double s) { return mul(a, scalar(s, a.dtype())); }
Tensor operator/(const Tensor& a, double s) { return div(a, scalar(s, a.dtype())); }
Tensor operator+(double s, const Tensor& a) { return add(scalar(s, a.dtype()), a); }
Tensor operator-(double s, const Tensor& a) { return sub(scalar(s, a.dtype()), a); }
Tensor operator*(double s, const Tensor& a) { return mul(scalar(s, a.dtype()), a); }
Tensor operator/(double s, const Tensor& a) { return div(scalar(s, a.dtype()), a); }

void add_(Tensor& dst, const Tensor& src, double alpha) {
  check_cpu("add_", {&dst, &src});
  check_same_dtype("add_", dst, src, "destination", "source");
  MINIDL_CHECK(dst.shape() == src.shape(), "add_: destination shape ", shape_str(dst.shape()),
               " differs from source shape ", shape_str(src.shape()));
  MINIDL_CHECK(dst.is_contiguous(), "add_: destination must be contiguous");
  Tensor s = plain(src);
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

void copy_(Tensor& dst, const Tensor& src) {
  check_cpu("copy_", {&dst, &src});
  check_same_dtype("copy_", dst, src, "destination", "source");
  MINIDL_CHECK(dst.shape() == src.shape(), "copy_: destination shape ", shape_str(dst.shape()),
               " differs from source shape ", shape_str(src.shape()));
  dispatch_storable(dst.dtype(), "copy_", [&](auto tag) {
    using T = decltype(tag);
    cpu::strided_copy(src.data<T>(), src.strides(), dst.data<T>(), dst.strides(), dst.shape());
  });
}

}  // namespace minidl
