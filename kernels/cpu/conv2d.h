// 2-D convolution (cross-correlation, as every framework defines it), NCHW, groups = 1.
//   y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x[n, c, i*sh - ph + p, j*sw - pw + q]
// (x is zero outside its bounds). conv2d_* lower each sample to a GEMM through im2col with a
// per-thread column buffer of one sample (never the whole batch); conv2d_reference_* are
// the nested loops that define the op, kept for the tests.
#pragma once
#include <cstdint>

namespace minidl::cpu {

struct ConvGeom {
  int64_t N, C, H, W;     // input
  int64_t O, KH, KW;      // weight
  int64_t SH, SW, PH, PW; // stride, padding
  int64_t OH, OW;         // output
  int64_t col_rows() const { return C * KH * KW; }
  int64_t col_cols() const { return OH * OW; }
};

// Fills OH/OW from the rest; an empty output is an error naming the sizes.
ConvGeom make_conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t SH,
                        int64_t SW, int64_t PH, int64_t PW);

// x: [N,C,H,W], w: [O,C,KH,KW], bias: [O] or nullptr, y: [N,O,OH,OW]; all contiguous.
template <class T> void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
// dx = conv_transpose(dy, w); dx overwritten.
template <class T> void conv2d_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
// dw = sum_n dy_n * im2col(x_n)^T, db = sum of dy over n,i,j (db may be nullptr); overwritten.
template <class T> void conv2d_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw, T* db);

template <class T> void conv2d_reference_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
template <class T> void conv2d_reference_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
template <class T> void conv2d_reference_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw, T* db);

// im2col of one sample: col[(c*KH+p)*KW+q, i*OW+j] = x[c, i*SH-PH+p, j*SW-PW+q] or 0.
template <class T> void im2col(const ConvGeom& g, const T* x, T* col);
// The adjoint: accumulates col back into x (x must be zeroed by the caller).
template <class T> void col2im(const ConvGeom& g, const T* col, T* x);

}  // namespace minidl::cpu
