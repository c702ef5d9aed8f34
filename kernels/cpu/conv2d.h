// 2-D convolution (cross-correlation, as every framework defines it), NCHW, groups = 1.
//   y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] * x[n, c, i*sh - ph + p, j*sw - pw + q]
// (x is zero outside its bounds). conv2d_* lower the convolution to GEMMs (how, and why that
// way, is at the top of conv2d.cpp); conv2d_reference_* are the nested loops that define the
// op, kept for the tests.
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
  // 1x1, stride 1, no padding: x itself is the column matrix (no im2col).
  bool pointwise() const { return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0; }
};

// Fills OH/OW from the rest; an empty output is an error naming the sizes.
ConvGeom make_conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t SH,
                        int64_t SW, int64_t PH, int64_t PW);

// What the forward may apply to each output element while the sample's output is still in
// cache, for an eval-mode batch norm that follows the conv (fused by conv2d_bn_eval,
// autograd/ops.h): y = relu?(y * scale[o] + shift[o] (+ residual)), rounded exactly as
// batchnorm_forward_eval rounds it (eval_affine_row), so the fused and the separate ops give
// the same bits. residual: [N,O,OH,OW] or nullptr.
template <class T>
struct ConvEpilogue {
  const T* scale;
  const T* shift;
  const T* residual;
  bool relu;
};

// x: [N,C,H,W], w: [O,C,KH,KW], bias: [O] or nullptr, y: [N,O,OH,OW]; all contiguous.
// epilogue: nullptr, or applied after the bias.
template <class T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y,
                    const ConvEpilogue<T>* epilogue = nullptr);
// dx = conv_transpose(dy, w); dx overwritten.
template <class T> void conv2d_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
// dw = sum_n dy_n * im2col(x_n)^T, db = sum of dy over n,i,j (db may be nullptr); overwritten.
template <class T> void conv2d_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw, T* db);

// ---- how a call is lowered (conv2d.cpp explains the choice) ----
enum class ConvPass { Forward, BackwardInput, BackwardWeight };
enum class ConvLowering {
  PerSample,  // one GEMM per sample, samples spread over threads (each GEMM single-threaded)
  Batched,    // `chunk` samples side by side in one [K, chunk*OH*OW] GEMM, threaded inside
};
struct ConvPlan {
  ConvLowering lowering;
  int64_t chunk;  // Batched: samples per GEMM (the last chunk holds the rest); else 1
  // Forward, float, a fast GEMM kernel selected: no im2col buffer; the GEMM packs its B panels
  // straight from x (implicit GEMM, gemm_fast.h). Same bits as the column-matrix path (a GEMM
  // of < 16 columns, where they could differ, always takes that path); plan_conv sets it where
  // it measured faster. Ignored by the backward passes, for double, for pointwise convs,
  // under the reference GEMM and with MINIDL_CONV_IMPLICIT=0.
  bool implicit = false;
};
// The plan conv2d_* use. It depends on the shape and the element size only, never on the
// thread count, so every result is bit-identical for any number of threads.
ConvPlan plan_conv(const ConvGeom& g, ConvPass pass, int64_t elem_bytes);
// The chunk a Batched plan uses: as many samples as keep the chunk's workspace within the
// bound stated in conv2d.cpp (at least one, at most N).
int64_t conv_chunk(const ConvGeom& g, int64_t elem_bytes);
// The same ops under a given plan (tests and bench/bench_conv force each lowering).
// backward_weight under a PerSample plan sums the samples in a number of lanes fixed by the
// shape (one partial dW each, added in lane order), the lanes spread over the threads.
template <class T>
void conv2d_forward_planned(const ConvGeom& g, const ConvPlan& plan, const T* x, const T* w, const T* bias, T* y,
                            const ConvEpilogue<T>* epilogue = nullptr);
template <class T>
void conv2d_backward_input_planned(const ConvGeom& g, const ConvPlan& plan, const T* dy, const T* w, T* dx);
template <class T>
void conv2d_backward_weight_planned(const ConvGeom& g, const ConvPlan& plan, const T* dy, const T* x, T* dw, T* db);

template <class T> void conv2d_reference_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);
template <class T> void conv2d_reference_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
template <class T> void conv2d_reference_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw, T* db);

// im2col of one sample: col[(c*KH+p)*KW+q, i*OW+j] = x[c, i*SH-PH+p, j*SW-PW+q] or 0.
template <class T> void im2col(const ConvGeom& g, const T* x, T* col);
// The adjoint: accumulates col back into x (x must be zeroed by the caller). Consumes col:
// its entries that fall on the padding may be overwritten with zeros.
template <class T> void col2im(const ConvGeom& g, T* col, T* x);
// The same two as plain loops with a bounds test per element (the tests' oracle).
template <class T> void im2col_reference(const ConvGeom& g, const T* x, T* col);
template <class T> void col2im_reference(const ConvGeom& g, const T* col, T* x);

}  // namespace minidl::cpu
