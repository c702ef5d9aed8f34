// Views and copies. A view shares storage and changes only shape/strides/offset; its
// backward reshapes, permutes or pads the gradient back to the input's geometry.
#include <numeric>
#include <type_traits>

#include "autograd/op_util.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/copy_cast.h"

namespace minidl {

using namespace detail;

namespace {
// Strides for viewing a contiguous tensor with `shape` (the only case view() accepts).
Tensor view_impl(const Tensor& x, const Shape& shape_in, const char* op) {
  Shape shape = shape_in;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MINIDL_CHECK(infer < 0, op, ": only one size may be -1 in ", shape_str(shape_in));
      infer = int64_t(i);
    } else {
      MINIDL_CHECK(shape[i] >= 1, op, ": size ", shape[i], " in ", shape_str(shape_in), " must be >= 1 (or -1)");
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MINIDL_CHECK(x.numel() % known == 0, op, ": cannot infer the -1 in ", shape_str(shape_in), " for ", x.numel(),
                 " elements (shape ", shape_str(x.shape()), ")");
    shape[infer] = x.numel() / known;
  }
  MINIDL_CHECK(shape_numel(shape) == x.numel(), op, ": cannot view shape ", shape_str(x.shape()), " (", x.numel(),
               " elements) as ", shape_str(shape), " (", shape_numel(shape), " elements)");
  MINIDL_CHECK(x.is_contiguous(), op, ": tensor of shape ", shape_str(x.shape()),
               " is not contiguous; use reshape() (which copies) or contiguous() first");
  Tensor out = make_view(x, shape, contiguous_strides(shape), x.offset());
  const Shape in_shape = x.shape();
  return record(out, op, {x}, [in_shape](const Tensor& g) -> std::vector<Tensor> { return {g.reshape(in_shape)}; });
}
}  // namespace

Tensor Tensor::view(const Shape& shape) const { return view_impl(*this, shape, "view"); }

Tensor Tensor::reshape(const Shape& shape) const {
  return is_contiguous() ? view_impl(*this, shape, "reshape") : view_impl(contiguous(), shape, "reshape");
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  MINIDL_CHECK(s <= e, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape out(shape().begin(), shape().begin() + s);
  int64_t n = 1;
  for (int64_t d = s; d <= e; ++d) n *= shape()[d];
  out.push_back(n);
  out.insert(out.end(), shape().begin() + e + 1, shape().end());
  return reshape(out);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  MINIDL_CHECK(int64_t(dims.size()) == dim(), "permute: got ", dims.size(), " dims for a tensor of shape ",
               shape_str(shape()));
  std::vector<int64_t> perm(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape s(dims.size()), st(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    perm[i] = wrap_dim(dims[i], dim(), "permute");
    MINIDL_CHECK(!seen[perm[i]], "permute: dim ", dims[i], " repeated in the permutation");
    seen[perm[i]] = true;
    s[i] = shape()[perm[i]];
    st[i] = strides()[perm[i]];
    inverse[perm[i]] = int64_t(i);
  }
  Tensor out = make_view(*this, s, st, offset());
  return record(out, "permute", {*this},
                [inverse](const Tensor& g) -> std::vector<Tensor> { return {g.permute(inverse)}; });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, dim(), "transpose")], p[wrap_dim(d1, dim(), "transpose")]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  const int64_t w = wrap_dim(d, dim(), "slice"), n = shape()[w];
  MINIDL_CHECK(step >= 1, "slice: step must be >= 1, got ", step);
  MINIDL_CHECK(0 <= start && start < end && end <= n, "slice: range [", start, ", ", end, ") is empty or outside 0..",
               n, " of dim ", d, " (shape ", shape_str(shape()), ")");
  Shape s = shape(), st = strides();
  s[w] = (end - start + step - 1) / step;
  st[w] *= step;
  Tensor out = make_view(*this, s, st, offset() + start * strides()[w]);
  const Shape in_shape = shape();
  const DType dt = dtype();
  return record(out, "slice", {*this}, [in_shape, dt, w, start, end, step](const Tensor& g) -> std::vector<Tensor> {
    Tensor gi = zeros(in_shape, dt, g.device());
    Tensor window = gi.slice(w, start, end, step);
    copy_(window, g);
    return {gi};
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  MINIDL_CHECK(length >= 1, "narrow: length must be >= 1, got ", length);
  return slice(d, start, start + length, 1);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  copy_(out, *this);
  return record(out, "clone", {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

namespace {
// The cast on the cpu: element by element in row-major order from a contiguous copy.
Tensor cast_cpu(const Tensor& x, DType target) {
  Tensor src = plain(x);
  Tensor out = Tensor::empty(x.shape(), target);
  dispatch_storable(x.dtype(), "to", [&](auto a) {
    dispatch_storable(target, "to", [&](auto b) {
      using A = decltype(a);
      using B = decltype(b);
      const A* s = src.data<A>();
      B* d = out.data<B>();
      for (int64_t i = 0; i < src.numel(); ++i) {
        if constexpr (std::is_integral_v<B> && std::is_floating_point_v<A>) {
          // Casting NaN, infinity or a value outside int64's range is undefined in C++.
          MINIDL_CHECK(s[i] >= -0x1p63 && s[i] < 0x1p63, "to: value ", s[i], " at flat index ", i,
                       " cannot be converted to int64");
        }
        d[i] = static_cast<B>(s[i]);
      }
    });
  });
  return out;
}
}  // namespace

// Casts between float32, float64 and int64 (float -> int64 truncates toward zero, as
// PyTorch does; NaN, infinity and values outside int64's range are an error on both
// devices). Differentiable between the float types only.
Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out;
#ifdef MINIDL_WITH_CUDA
  if (device() == Device::CUDA) {  // reads *this in place through its strides
    out = Tensor::empty(shape(), target, Device::CUDA);
    cuda::cast(dtype(), raw_data(), target, out.raw_data(), numel(),
               cuda::make_offset_map<1>(shape(), {strides()}, "to"), "to");
  }
#endif
  if (device() == Device::CPU) out = cast_cpu(*this, target);
  if (!is_floating_compute(target)) return out;
  const DType back = dtype();
  return record(out, "to", {*this}, [back](const Tensor& g) -> std::vector<Tensor> { return {g.to(back)}; });
}

}  // namespace minidl
