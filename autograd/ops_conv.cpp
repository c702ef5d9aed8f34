// conv2d: forward and both backward passes on the im2col/GEMM kernels (kernels/cpu/conv2d).
#include "autograd/op_util.h"
#include "kernels/cpu/conv2d.h"

namespace minidl {

using namespace detail;

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding) {
  return conv2d(x, weight, bias, Conv2dOptions{stride, stride, padding, padding});
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  check_cpu("conv2d", {&x, &weight, &bias});
  check_float("conv2d", x);
  check_same_dtype("conv2d", x, weight, "input", "weight");
  check_dim("conv2d", x, 4, "input (N, C, H, W)");
  check_dim("conv2d", weight, 4, "weight (O, C, KH, KW)");
  MINIDL_CHECK(x.size(1) == weight.size(1), "conv2d: input ", shape_str(x.shape()), " has ", x.size(1),
               " channels but weight ", shape_str(weight.shape()), " expects ", weight.size(1));
  if (bias.defined()) {
    check_same_dtype("conv2d", x, bias, "input", "bias");
    MINIDL_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "conv2d: bias ", shape_str(bias.shape()),
                 " must be [", weight.size(0), "] for weight ", shape_str(weight.shape()));
  }
  const cpu::ConvGeom g = cpu::make_conv_geom(x.size(0), x.size(1), x.size(2), x.size(3), weight.size(0),
                                              weight.size(2), weight.size(3), opt.stride_h, opt.stride_w, opt.pad_h,
                                              opt.pad_w);
  Tensor px = plain(x), pw = plain(weight), pb = bias.defined() ? plain(bias) : Tensor();
  Tensor out = Tensor::empty({g.N, g.O, g.OH, g.OW}, x.dtype());
  dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    cpu::conv2d_forward<T>(g, px.data<T>(), pw.data<T>(), pb.defined() ? pb.data<T>() : nullptr, out.data<T>());
  });
  if (!needs_grad({&x, &weight, &bias})) return out;
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(out, "conv2d", {x, weight, bias},
                [g, px, pw, need_x, need_w, need_b](const Tensor& grad) -> std::vector<Tensor> {
                  Tensor dy = plain(grad);
                  Tensor dx, dw, db;
                  if (need_x) dx = Tensor::empty(px.shape(), px.dtype());
                  if (need_w || need_b) dw = Tensor::empty(pw.shape(), pw.dtype());
                  if (need_b) db = Tensor::empty({g.O}, pw.dtype());
                  dispatch_float(px.dtype(), "conv2d backward", [&](auto tag) {
                    using T = decltype(tag);
                    if (need_x) cpu::conv2d_backward_input<T>(g, dy.data<T>(), pw.data<T>(), dx.data<T>());
                    if (need_w || need_b)
                      cpu::conv2d_backward_weight<T>(g, dy.data<T>(), px.data<T>(), dw.data<T>(),
                                                     need_b ? db.data<T>() : nullptr);
                  });
                  return {dx, need_w ? dw : Tensor(), db};
                });
}

}  // namespace minidl
