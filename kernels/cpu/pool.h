// Pooling, NCHW.
// max_pool2d: y[n,c,i,j] = max over the window rows i*S-P .. +K-1, cols j*S-P .. +K-1 of x,
//   padding never wins (it is -inf). Ties go to the first element in row-major window order,
//   so the saved argmax (flat h*W+w index in the plane) is deterministic. Backward routes
//   dy to that argmax.
// global average pool: y[n,c] = mean over H*W; backward spreads dy / (H*W) evenly.
#pragma once
#include <cstdint>

namespace minidl::cpu {

struct PoolGeom {
  int64_t N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
};
PoolGeom make_pool_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                        int64_t PH, int64_t PW);

// Any geometry; the 3x3 stride-2 pad-1 pool (ResNet's stem) takes a fast path whose
// interior windows are unrolled and branch-free. Same values and argmax as the reference.
template <class T> void maxpool2d_forward(const PoolGeom& g, const T* x, T* y, int32_t* argmax);
// The plain loop over every window, the reference the fast path is tested against.
template <class T> void maxpool2d_forward_reference(const PoolGeom& g, const T* x, T* y, int32_t* argmax);
template <class T> void maxpool2d_backward(const PoolGeom& g, const T* dy, const int32_t* argmax, T* dx);

// Forward sums each plane in double lanes (bn_lanes.h: vectorised, float widened on load);
// the reference sums one element at a time in double.
template <class T> void global_avgpool_forward(const T* x, int64_t NC, int64_t HW, T* y);
template <class T> void global_avgpool_forward_reference(const T* x, int64_t NC, int64_t HW, T* y);
template <class T> void global_avgpool_backward(const T* dy, int64_t NC, int64_t HW, T* dx);

}  // namespace minidl::cpu
