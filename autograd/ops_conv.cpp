// conv2d: forward and both backward passes. On the CPU the im2col/GEMM kernels
// (kernels/cpu/conv2d); on the GPU cuDNN or our own kernels, per MINIDL_CONV
// (kernels/cuda/conv_select.h).
#include "autograd/op_util.h"
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/conv_select.h"
#endif

namespace minidl {

using namespace detail;

namespace {

#ifdef MINIDL_WITH_CUDA
float* f32_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
#endif

// y = conv(x, w) + b; all contiguous, on x's device.
void run_forward(const cpu::ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
#ifdef MINIDL_WITH_CUDA
  if (x.device() == Device::CUDA) {
    cuda::conv2d_cuda_forward(g, x.data<float>(), w.data<float>(), f32_or_null(b), y.data<float>());
    return;
  }
#endif
  dispatch_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    cpu::conv2d_forward<T>(g, x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>());
  });
}

// The gradients that are defined: dx from dy and w; dw and db from dy and x. On the CPU, db
// comes with dw (the kernel sums both in one pass), so dw is defined whenever db is.
void run_backward(const cpu::ConvGeom& g, const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& dx,
                  const Tensor& dw, const Tensor& db) {
#ifdef MINIDL_WITH_CUDA
  if (x.device() == Device::CUDA) {
    if (dx.defined()) cuda::conv2d_cuda_backward_input(g, dy.data<float>(), w.data<float>(), dx.data<float>());
    if (dw.defined() || db.defined())
      cuda::conv2d_cuda_backward_weight(g, dy.data<float>(), x.data<float>(), f32_or_null(dw), f32_or_null(db));
    return;
  }
#endif
  dispatch_float(x.dtype(), "conv2d backward", [&](auto tag) {
    using T = decltype(tag);
    if (dx.defined()) cpu::conv2d_backward_input<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>());
    if (dw.defined())
      cpu::conv2d_backward_weight<T>(g, dy.data<T>(), x.data<T>(), dw.data<T>(),
                                     db.defined() ? db.data<T>() : nullptr);
  });
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding) {
  return conv2d(x, weight, bias, Conv2dOptions{stride, stride, padding, padding});
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  const Device dev = common_device("conv2d", {&x, &weight, &bias});
  check_float("conv2d", x);
  check_same_dtype("conv2d", x, weight, "input", "weight");
  if (dev == Device::CUDA) check_cuda_float32("conv2d", x);
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
  Tensor out = Tensor::empty({g.N, g.O, g.OH, g.OW}, x.dtype(), dev);
  run_forward(g, px, pw, pb, out);
  if (!needs_grad({&x, &weight, &bias})) return out;
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(out, "conv2d", {x, weight, bias},
                [g, px, pw, need_x, need_w, need_b](const Tensor& grad) -> std::vector<Tensor> {
                  Tensor dy = plain(grad);
                  const Device d = px.device();
                  Tensor dx, dw, db;
                  if (need_x) dx = Tensor::empty(px.shape(), px.dtype(), d);
                  // The CPU kernel computes db alongside dw; the GPU's computes each alone.
                  if (need_w || (need_b && d == Device::CPU)) dw = Tensor::empty(pw.shape(), pw.dtype(), d);
                  if (need_b) db = Tensor::empty({g.O}, pw.dtype(), d);
                  run_backward(g, dy, px, pw, dx, dw, db);
                  return {dx, need_w ? dw : Tensor(), db};
                });
}

Tensor conv2d_bn_eval(const Tensor& x, const Tensor& weight, const Tensor& conv_bias, const Conv2dOptions& opt,
                      const Tensor& bn_weight, const Tensor& bn_bias, const Tensor& running_mean,
                      const Tensor& running_var, double eps, const Tensor& identity, bool relu) {
  const char* op = "conv2d_bn_eval";
  check_cpu(op, {&x, &weight, &conv_bias, &bn_weight, &bn_bias, &running_mean, &running_var, &identity});
  MINIDL_CHECK(!needs_grad({&x, &weight, &conv_bias, &bn_weight, &bn_bias, &identity}), op,
               ": records no graph, so it takes no input that requires grad while grad mode is on (use conv2d and "
               "batch_norm for training)");
  check_float(op, x);
  check_same_dtype(op, x, weight, "input", "weight");
  check_dim(op, x, 4, "input (N, C, H, W)");
  check_dim(op, weight, 4, "weight (O, C, KH, KW)");
  MINIDL_CHECK(x.size(1) == weight.size(1), op, ": input ", shape_str(x.shape()), " has ", x.size(1),
               " channels but weight ", shape_str(weight.shape()), " expects ", weight.size(1));
  MINIDL_CHECK(eps > 0, op, ": eps must be > 0, got ", eps);
  const int64_t O = weight.size(0);
  auto check_vec = [&](const Tensor& t, const char* what) {
    MINIDL_CHECK(t.defined(), op, ": ", what, " is required");
    check_same_dtype(op, x, t, "input", what);
    MINIDL_CHECK(t.dim() == 1 && t.size(0) == O, op, ": ", what, " has shape ", shape_str(t.shape()), ", expected [",
                 O, "] for weight ", shape_str(weight.shape()));
  };
  if (conv_bias.defined()) check_vec(conv_bias, "conv bias");
  check_vec(bn_weight, "batch norm weight");
  check_vec(bn_bias, "batch norm bias");
  check_vec(running_mean, "running_mean");
  check_vec(running_var, "running_var");
  const cpu::ConvGeom g = cpu::make_conv_geom(x.size(0), x.size(1), x.size(2), x.size(3), O, weight.size(2),
                                              weight.size(3), opt.stride_h, opt.stride_w, opt.pad_h, opt.pad_w);
  if (identity.defined()) {
    check_same_dtype(op, x, identity, "input", "identity");
    MINIDL_CHECK(identity.shape() == Shape({g.N, g.O, g.OH, g.OW}), op, ": identity has shape ",
                 shape_str(identity.shape()), ", expected the conv output's [", g.N, ", ", g.O, ", ", g.OH, ", ", g.OW,
                 "]");
  }
  Tensor px = plain(x), pw = plain(weight), pcb = conv_bias.defined() ? plain(conv_bias) : Tensor();
  Tensor pid = identity.defined() ? plain(identity) : Tensor();
  Tensor pg = plain(bn_weight), pbb = plain(bn_bias), pm = plain(running_mean), pv = plain(running_var);
  Tensor out = Tensor::empty({g.N, g.O, g.OH, g.OW}, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    // The batch norm's affine form per channel, exactly as batchnorm_forward_eval makes it.
    std::vector<T> scale(static_cast<size_t>(O)), shift(static_cast<size_t>(O));
    for (int64_t o = 0; o < O; ++o)
      cpu::eval_scale_shift(pg.data<T>()[o], pbb.data<T>()[o], pm.data<T>()[o], pv.data<T>()[o], eps, scale[o],
                            shift[o]);
    const cpu::ConvEpilogue<T> ep{scale.data(), shift.data(), pid.defined() ? pid.data<T>() : nullptr, relu};
    cpu::conv2d_forward<T>(g, px.data<T>(), pw.data<T>(), pcb.defined() ? pcb.data<T>() : nullptr, out.data<T>(),
                           &ep);
  });
  return out;
}

}  // namespace minidl
