// Reductions. sum over dims: backward broadcasts the gradient back over the reduced dims;
// mean is sum scaled by 1/count. sum_to is the adjoint of broadcasting (and vice versa).
#include <algorithm>

#include "autograd/op_util.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/reduce.h"

namespace minidl {

using namespace detail;

namespace {

// x's values repeated along the dims where x has size 1 (or that it lacks) up to `shape`.
Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  broadcast_shapes(x.shape(), shape, "broadcast_to");
  if (x.shape() == shape) return x;
  Tensor v = make_view(x, shape, broadcast_strides(x.shape(), x.strides(), shape), x.offset());
  return plain(v);
}

std::vector<bool> reduce_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> mask(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), op);
    MINIDL_CHECK(!mask[w], op, ": dim ", d, " listed twice");
    mask[w] = true;
  }
  return mask;
}

#ifdef MINIDL_WITH_CUDA
// The sums of x over the masked dims into out (contiguous, x's shape with those dims 1):
// one map walks the kept dims and one the reduced dims, both with x's strides, so x is
// read in place whatever its layout.
void sum_cuda(const Tensor& x, const std::vector<bool>& mask, Tensor& out, const char* op) {
  check_cuda_float32(op, x);
  Shape kept_sizes, kept_strides, red_sizes, red_strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    (mask[d] ? red_sizes : kept_sizes).push_back(x.shape()[d]);
    (mask[d] ? red_strides : kept_strides).push_back(x.strides()[d]);
  }
  cuda::sum_f32(x.data<float>(), out.data<float>(), shape_numel(kept_sizes),
                cuda::make_offset_map<1>(kept_sizes, {kept_strides}, op), shape_numel(red_sizes),
                cuda::make_offset_map<1>(red_sizes, {red_strides}, op));
}
#endif

Tensor sum_impl(const Tensor& x, const std::vector<bool>& mask, bool keepdim, const char* op) {
  const Device dev = common_device(op, {&x});
  check_float(op, x);
  Shape kept = x.shape(), out_shape;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (mask[d]) kept[d] = 1;
    if (!mask[d] || keepdim) out_shape.push_back(kept[d]);
  }
  Tensor out = Tensor::empty(kept, x.dtype(), dev);
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) sum_cuda(x, mask, out, op);
#endif
  if (dev == Device::CPU) {
    Tensor in = plain(x);
    dispatch_float(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      cpu::sum_reduce(in.data<T>(), in.shape(), mask, out.data<T>());
    });
  }
  out = make_view(out, out_shape, contiguous_strides(out_shape), 0);
  const Shape in_shape = x.shape();
  return record(out, op, {x}, [in_shape, kept](const Tensor& g) -> std::vector<Tensor> {
    return {broadcast_to(g.reshape(kept), in_shape)};
  });
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, reduce_mask(x, dims, "sum"), keepdim, "sum");
}
Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  std::vector<bool> mask = reduce_mask(x, dims, "mean");
  int64_t count = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.shape()[d];
  return sum_impl(x, mask, keepdim, "mean") * (1.0 / double(count));
}
Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  MINIDL_CHECK(broadcast_shapes(shape, x.shape(), "sum_to") == x.shape(), "sum_to: shape ", shape_str(shape),
               " does not broadcast to ", shape_str(x.shape()));
  const int64_t lead = x.dim() - int64_t(shape.size());
  std::vector<bool> mask(x.dim(), false);
  for (int64_t d = 0; d < x.dim(); ++d) mask[d] = d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1);
  Tensor s = sum_impl(x, mask, true, "sum_to");
  return s.reshape(shape);
}

}  // namespace minidl
