// The data movement around conv's GEMMs (internal to conv2d*.cpp): im2col / col2im for a
// range of channels of one sample into a column matrix with any row stride, and the
// gather / scatter between NCHW and a chunk's [rows, nb*P] matrix.
//
// A chunk's matrix puts nb samples side by side: column s*P + i belongs to sample s, pixel i
// (P = OH*OW); row stride ld = nb*P. One sample's columns are then a [rows, P] block at
// column offset s*P with row stride ld, which is what these functions read and write.
#pragma once
#include <cstdint>

#include "kernels/cpu/conv2d.h"

namespace minidl::cpu {

// Copies of fewer elements than this run on one thread: a parallel region's start and end
// barrier cost more than the copy (~1 MB of floats takes ~50 us on one core), and on a
// shared machine each barrier can wait a whole time slice for a descheduled thread.
constexpr int64_t kParallelCopyElems = int64_t(1) << 18;

// Rows (c*KH+p)*KW+q for c in [c0, c1) of one sample's im2col, written at col (row stride
// ld): col[((c*KH+p)*KW+q)*ld + i*OW+j] = x[c, i*SH-PH+p, j*SW-PW+q] or 0. x is one sample.
template <class T>
void im2col_channels(const ConvGeom& g, const T* x, int64_t c0, int64_t c1, T* col, int64_t ld);

// The adjoint for channels [c0, c1): adds those rows of col back into x (one sample; the
// caller zeroes x first). Each x element receives its terms in (p, q, i, j) order. Consumes
// col: for stride-1 same-width convs its entries that fall on the padding are zeroed.
template <class T>
void col2im_channels(const ConvGeom& g, T* col, int64_t c0, int64_t c1, T* x, int64_t ld);

// src: nb samples of [R, P] each, sample stride R*P (NCHW); dst: [R, nb*P].
template <class T>
void gather_chunk(const T* src, int64_t nb, int64_t R, int64_t P, T* dst);

// The inverse: src [R, nb*P] -> dst samples [R, P], adding bias[r] to row r (bias may be
// nullptr).
template <class T>
void scatter_chunk(const T* src, int64_t nb, int64_t R, int64_t P, const T* bias, T* dst);

// A grow-only buffer of at least n elements, one per (thread, slot): conv's workspaces,
// reused across calls so that a training step does not page-fault fresh memory every call.
// Its size is bounded by the plan (conv2d.cpp), so what stays allocated is a few MB per
// thread. The contents are unspecified.
template <class T>
T* conv_workspace(int slot, int64_t n);

}  // namespace minidl::cpu
