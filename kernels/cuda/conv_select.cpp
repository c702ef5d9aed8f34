// conv2d_cuda_* (conv_select.h): cuDNN or our own kernels, per MINIDL_CONV, read before
// anything is queued so a bad value is an ordinary Error.
#include "kernels/cuda/conv_select.h"

#include "kernels/cuda/conv_own.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

void conv2d_cuda_forward(const cpu::ConvGeom& g, const float* x, const float* w, const float* bias, float* y) {
  const ConvImpl impl = conv_impl_from_env();
  if (g.N == 0) return;  // nothing to compute (cuDNN rejects empty descriptors)
  if (impl == ConvImpl::Own)
    conv_own_forward(g, x, w, bias, y);
  else
    cudnn_conv_forward(g, x, w, bias, y);
}

void conv2d_cuda_backward_input(const cpu::ConvGeom& g, const float* dy, const float* w, float* dx) {
  const ConvImpl impl = conv_impl_from_env();
  if (g.N == 0) return;
  if (impl == ConvImpl::Own)
    conv_own_backward_input(g, dy, w, dx);
  else
    cudnn_conv_backward_data(g, dy, w, dx);
}

void conv2d_cuda_backward_weight(const cpu::ConvGeom& g, const float* dy, const float* x, float* dw, float* db) {
  const ConvImpl impl = conv_impl_from_env();
  if (g.N == 0) {  // an empty sum
    if (dw) memset_zero(dw, static_cast<size_t>(g.O * g.col_rows()) * sizeof(float));
    if (db) memset_zero(db, static_cast<size_t>(g.O) * sizeof(float));
    return;
  }
  if (impl == ConvImpl::Own)
    conv_own_backward_weight(g, dy, x, dw, db);
  else
    cudnn_conv_backward_filter(g, dy, x, dw, db);
}

}  // namespace minidl::cuda
