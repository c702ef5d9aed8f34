// Pooling and dropout.
#include <algorithm>
#include <memory>
#include <vector>

#include "autograd/op_util.h"
#include "kernels/cpu/pool.h"
#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/pool.h"
#include "kernels/cuda/runtime.h"
#endif

namespace minidl {

using namespace detail;

namespace {

// n values of T on dev that a backward node keeps (max pool's argmax, dropout's keep-mask):
// freed (on cuda: back to the caching allocator) when the last holder goes.
template <class T>
std::shared_ptr<T> side_buffer(Device dev, int64_t n) {
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA)
    return std::shared_ptr<T>(static_cast<T*>(cuda::device_alloc(sizeof(T) * size_t(std::max<int64_t>(n, 1)))),
                              cuda::device_free);
#endif
  (void)dev;
  return std::shared_ptr<T>(new T[size_t(std::max<int64_t>(n, 1))], std::default_delete<T[]>());
}

}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const Device dev = common_device("max_pool2d", {&x});
  check_float("max_pool2d", x);
  if (dev == Device::CUDA) check_cuda_float32("max_pool2d", x);
  check_dim("max_pool2d", x, 4, "input (N, C, H, W)");
  const cpu::PoolGeom g =
      cpu::make_pool_geom(x.size(0), x.size(1), x.size(2), x.size(3), kernel, kernel, stride, stride, padding, padding);
  Tensor px = plain(x);
  Tensor out = Tensor::empty({g.N, g.C, g.OH, g.OW}, x.dtype(), dev);
  std::shared_ptr<int32_t> argmax = side_buffer<int32_t>(dev, out.numel());
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA)
    cuda::maxpool2d_forward(g, px.data<float>(), out.data<float>(), argmax.get());
  else
#endif
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    cpu::maxpool2d_forward<T>(g, px.data<T>(), out.data<T>(), argmax.get());
  });
  const DType dt = x.dtype();
  return record(out, "max_pool2d", {x}, [g, argmax, dt, dev](const Tensor& grad) -> std::vector<Tensor> {
    Tensor dy = plain(grad);
    Tensor dx = Tensor::empty({g.N, g.C, g.H, g.W}, dt, dev);
#ifdef MINIDL_WITH_CUDA
    if (dev == Device::CUDA)
      cuda::maxpool2d_backward(g, dy.data<float>(), argmax.get(), dx.data<float>());
    else
#endif
    dispatch_float(dt, "max_pool2d backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::maxpool2d_backward<T>(g, dy.data<T>(), argmax.get(), dx.data<T>());
    });
    return {dx};
  });
}

Tensor adaptive_avg_pool2d_1x1(const Tensor& x) {
  const Device dev = common_device("adaptive_avg_pool2d", {&x});
  check_float("adaptive_avg_pool2d", x);
  if (dev == Device::CUDA) check_cuda_float32("adaptive_avg_pool2d", x);
  check_dim("adaptive_avg_pool2d", x, 4, "input (N, C, H, W)");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor px = plain(x);
  Tensor out = Tensor::empty({N, C, 1, 1}, x.dtype(), dev);
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA)
    cuda::global_avgpool_forward(px.data<float>(), N * C, HW, out.data<float>());
  else
#endif
  dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    cpu::global_avgpool_forward<T>(px.data<T>(), N * C, HW, out.data<T>());
  });
  const Shape in_shape = x.shape();
  return record(out, "adaptive_avg_pool2d", {x}, [in_shape, N, C, HW](const Tensor& grad) -> std::vector<Tensor> {
    Tensor dy = plain(grad);
    Tensor dx = Tensor::empty(in_shape, dy.dtype(), dy.device());
#ifdef MINIDL_WITH_CUDA
    if (dy.device() == Device::CUDA)
      cuda::global_avgpool_backward(dy.data<float>(), N * C, HW, dx.data<float>());
    else
#endif
    dispatch_float(dy.dtype(), "adaptive_avg_pool2d backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::global_avgpool_backward<T>(dy.data<T>(), N * C, HW, dx.data<T>());
    });
    return {dx};
  });
}

#ifdef MINIDL_WITH_CUDA
namespace {

// Dropout on cuda: the keep-mask is drawn on the host in the cpu op's order from gen (so a
// seed drops the same elements on every device), uploaded as bytes, and applied by a kernel
// that multiplies by the same float 1/(1-p) the cpu mask holds.
Tensor dropout_cuda(const Tensor& x, double p, Generator& gen) {
  check_cuda_float32("dropout", x);
  const int64_t n = x.numel();
  std::vector<uint8_t> keep(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) keep[size_t(i)] = gen.uniform() < p ? 0 : 1;
  std::shared_ptr<uint8_t> mask = side_buffer<uint8_t>(Device::CUDA, n);
  cuda::copy_host_to_device(mask.get(), keep.data(), size_t(n));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  Tensor px = plain(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
  cuda::dropout_apply(px.data<float>(), mask.get(), scale, n, out.data<float>());
  return record(out, "dropout", {x}, [mask, scale, n](const Tensor& g) -> std::vector<Tensor> {
    Tensor dy = plain(g);
    Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), Device::CUDA);
    cuda::dropout_apply(dy.data<float>(), mask.get(), scale, n, dx.data<float>());
    return {dx};
  });
}

}  // namespace
#endif

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  MINIDL_CHECK(p >= 0 && p < 1, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  const Device dev = common_device("dropout", {&x});
  check_float("dropout", x);
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) return dropout_cuda(x, p, gen);
#endif
  (void)dev;
  // mask = 1/(1-p) where kept, 0 where dropped, drawn in row-major order from gen.
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    T* m = mask.data<T>();
    const T keep = static_cast<T>(1.0 / (1.0 - p));
    for (int64_t i = 0; i < mask.numel(); ++i) m[i] = gen.uniform() < p ? T(0) : keep;
  });
  Tensor out;
  {
    NoGradGuard ng;
    out = mul(x.detach(), mask);
  }
  return record(out, "dropout", {x}, [mask](const Tensor& g) -> std::vector<Tensor> { return {mul(g, mask)}; });
}

}  // namespace minidl
