// Pooling and dropout.
#include <memory>
#include <vector>

#include "autograd/op_util.h"
#include "kernels/cpu/pool.h"

namespace minidl {

using namespace detail;

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  check_cpu("max_pool2d", {&x});
  check_float("max_pool2d", x);
  check_dim("max_pool2d", x, 4, "input (N, C, H, W)");
  const cpu::PoolGeom g =
      cpu::make_pool_geom(x.size(0), x.size(1), x.size(2), x.size(3), kernel, kernel, stride, stride, padding, padding);
  Tensor px = plain(x);
  Tensor out = Tensor::empty({g.N, g.C, g.OH, g.OW}, x.dtype());
  auto argmax = std::make_shared<std::vector<int32_t>>(out.numel());
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    cpu::maxpool2d_forward<T>(g, px.data<T>(), out.data<T>(), argmax->data());
  });
  const DType dt = x.dtype();
  return record(out, "max_pool2d", {x}, [g, argmax, dt](const Tensor& grad) -> std::vector<Tensor> {
    Tensor dy = plain(grad);
    Tensor dx = Tensor::empty({g.N, g.C, g.H, g.W}, dt);
    dispatch_float(dt, "max_pool2d backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::maxpool2d_backward<T>(g, dy.data<T>(), argmax->data(), dx.data<T>());
    });
    return {dx};
  });
}

Tensor adaptive_avg_pool2d_1x1(const Tensor& x) {
  check_cpu("adaptive_avg_pool2d", {&x});
  check_float("adaptive_avg_pool2d", x);
  check_dim("adaptive_avg_pool2d", x, 4, "input (N, C, H, W)");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor px = plain(x);
  Tensor out = Tensor::empty({N, C, 1, 1}, x.dtype());
  dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    cpu::global_avgpool_forward<T>(px.data<T>(), N * C, HW, out.data<T>());
  });
  const Shape in_shape = x.shape();
  return record(out, "adaptive_avg_pool2d", {x}, [in_shape, N, C, HW](const Tensor& grad) -> std::vector<Tensor> {
    Tensor dy = plain(grad);
    Tensor dx = Tensor::empty(in_shape, dy.dtype());
    dispatch_float(dy.dtype(), "adaptive_avg_pool2d backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::global_avgpool_backward<T>(dy.data<T>(), N * C, HW, dx.data<T>());
    });
    return {dx};
  });
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  MINIDL_CHECK(p >= 0 && p < 1, "dropout: probability must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  check_cpu("dropout", {&x});
  check_float("dropout", x);
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
