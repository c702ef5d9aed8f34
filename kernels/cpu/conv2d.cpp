// conv2d forward and backward as GEMMs over im2col columns (P = OH*OW pixels per sample,
// K = C*KH*KW rows):
//   forward        Y_n[O, P]  = W[O, K] · cols(x_n)[K, P]               (+ bias)
//   backward data  cols[K, P] = Wᵀ · dY_n[O, P], then dx_n = col2im(cols)
//   backward wt    dW[O, K]   = sum_n dY_n · cols(x_n)ᵀ                 (db = sum of dY)
// A 1x1 stride-1 unpadded conv needs no im2col: x_n [C, P] is its column matrix.
//
// Two lowerings (ConvLowering, chosen by plan_conv from the shape alone):
//  - PerSample: samples are spread over the threads, each running its own one-sample GEMM
//    single-threaded. Good when P is large: each GEMM is then wide enough on its own, and the
//    threads share nothing. Backward weight sums the samples in L lanes (L from the shape, a
//    power of two up to 8): lane l adds samples [N*l/L, N*(l+1)/L) in order into its own
//    partial dW, and the partials are added in lane order at the end (one vectorised pass).
//  - Batched: `chunk` samples are laid side by side in one column matrix [K, chunk*P] and go
//    through one GEMM that is threaded inside; the result [O, chunk*P] is scattered back to
//    NCHW. At 64x64 input the late ResNet layers have P = 16 or 4, where a one-sample GEMM
//    is a sliver the micro-kernel cannot fill (16 lanes wide) and the weights are streamed
//    once per sample; the chunk makes N = chunk*P wide and reuses the weights across samples.
//    Backward data gathers dY's chunk to [O, chunk*P] the same way, and backward weight
//    multiplies the gathered dY chunk by the chunk's columns transposed, so each GEMM sums over
//    chunk*P (a long K is what GEMM likes) and the chunks add into dW in sample order through
//    the GEMM's beta = 1: no partial buffers, nothing to reduce.
// Every output element gets the same summation order whatever the thread count (the GEMM's
// own order depends only on its shape; lanes and chunks come from the shape), so results
// are bit-identical for any number of threads. The plan must not depend on the thread count
// for that to hold.
//
// Workspace bound: a chunk holds at most as many samples as fit kChunkBytes for its column
// matrix plus its result/dY block ((K + O) * chunk * P elements); at least one sample. So the
// workspace is a few MB per call whatever the batch size, never the whole batch once the
// batch is large. PerSample needs one sample's columns per thread (K * P), its forward one
// packed copy of W (O x K, rounded up to whole tiles), and backward weight's lanes at most
// kChunkBytes of partials besides dW.
#include "kernels/cpu/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d_lowering.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_fast.h"
#include "tensor/error.h"

namespace minidl::cpu {

namespace {

constexpr int64_t kChunkBytes = int64_t(4) << 20;

// The implicit GEMM (gemm_fast.h) gives the column-matrix GEMM's bits when the GEMM has at
// least this many columns (the dense call then takes the packed kernel, unswapped, on both
// ISAs: it swaps below one vector, 16 floats for AVX-512, and uses the dot kernel up to 8).
constexpr int64_t kImplicitMinCols = 16;

// Below this many multiply-adds a parallel region costs more than it saves.
bool worth_parallel(const ConvGeom& g) { return g.N * g.O * g.col_rows() * g.col_cols() > (1 << 18); }

// Samples per chunk of a Batched plan (a forced plan may say 0).
int64_t chunk_of(const ConvPlan& plan) { return std::max<int64_t>(plan.chunk, 1); }

// Calls fn(n0, nb) for the chunks of a Batched plan (samples [n0, n0 + nb)), in sample order.
template <class F>
void for_each_chunk(const ConvGeom& g, const ConvPlan& plan, F&& fn) {
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk_of(plan)) fn(n0, std::min(chunk_of(plan), g.N - n0));
}

// Channels per task when a chunk's im2col / col2im is spread over threads: enough to
// amortise a call's set-up, few enough to split a chunk of few samples evenly.
constexpr int64_t kChannelBlock = 16;

// Samples [n0, n0 + nb) of x -> the chunk's column matrix [K, nb*P].
template <class T>
void lower_chunk(const ConvGeom& g, const T* x, int64_t nb, T* col) {
  const int64_t P = g.col_cols(), ld = nb * P, chw = g.C * g.H * g.W;
  if (g.pointwise()) return gather_chunk(x, nb, g.C, P, col);
  const int64_t blocks = (g.C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) schedule(static) if (g.col_rows() * ld > kParallelCopyElems && !omp_in_parallel())
  for (int64_t s = 0; s < nb; ++s)
    for (int64_t b = 0; b < blocks; ++b)
      im2col_channels(g, x + s * chw, b * kChannelBlock, std::min(g.C, (b + 1) * kChannelBlock), col + s * P, ld);
}

// The chunk's columns [K, nb*P] -> dx of samples [n0, n0 + nb) (overwritten).
template <class T>
void raise_chunk(const ConvGeom& g, T* col, int64_t nb, T* dx) {
  const int64_t P = g.col_cols(), ld = nb * P, hw = g.H * g.W;
  if (g.pointwise()) return scatter_chunk<T>(col, nb, g.C, P, nullptr, dx);
  const int64_t blocks = (g.C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) schedule(static) if (g.col_rows() * ld > kParallelCopyElems && !omp_in_parallel())
  for (int64_t s = 0; s < nb; ++s)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * kChannelBlock, c1 = std::min(g.C, c0 + kChannelBlock);
      T* dxs = dx + s * g.C * hw;
      std::fill(dxs + c0 * hw, dxs + c1 * hw, T(0));
      col2im_channels(g, col + s * P, c0, c1, dxs, ld);
    }
}

// db[o] = sum over n, i of dy[n, o, i], in double. Eight running sums per o (lane k takes
// the elements whose index in the row is k mod 8) so the inner loop vectorises while the
// order stays fixed; each o is summed by one thread.
template <class T>
void bias_grad(const ConvGeom& g, const T* dy, T* db) {
  const int64_t P = g.col_cols();
#pragma omp parallel for schedule(static) if (g.N * g.O * P > (1 << 16) && !omp_in_parallel())
  for (int64_t o = 0; o < g.O; ++o) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t n = 0; n < g.N; ++n) {
      const T* d = dy + (n * g.O + o) * P;
      int64_t i = 0;
      for (; i + 8 <= P; i += 8)
        for (int k = 0; k < 8; ++k) lane[k] += double(d[i + k]);
      for (int k = 0; i < P; ++i, ++k) lane[k] += double(d[i]);
    }
    db[o] = static_cast<T>(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
  }
}

}  // namespace

ConvGeom make_conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH, int64_t KW, int64_t SH,
                        int64_t SW, int64_t PH, int64_t PW) {
  MINIDL_CHECK(SH >= 1 && SW >= 1, "conv2d: stride must be >= 1, got (", SH, ", ", SW, ")");
  MINIDL_CHECK(PH >= 0 && PW >= 0, "conv2d: padding must be >= 0, got (", PH, ", ", PW, ")");
  ConvGeom g{N, C, H, W, O, KH, KW, SH, SW, PH, PW, 0, 0};
  MINIDL_CHECK(H + 2 * PH >= KH && W + 2 * PW >= KW, "conv2d: kernel ", KH, "x", KW, " is larger than the padded input ",
               H + 2 * PH, "x", W + 2 * PW);
  g.OH = (H + 2 * PH - KH) / SH + 1;
  g.OW = (W + 2 * PW - KW) / SW + 1;
  return g;
}

int64_t conv_chunk(const ConvGeom& g, int64_t elem_bytes) {
  const int64_t per_sample = (g.col_rows() + g.O) * g.col_cols() * elem_bytes;
  const int64_t most = std::clamp<int64_t>(kChunkBytes / std::max<int64_t>(per_sample, 1), 1, std::max<int64_t>(g.N, 1));
  // As few chunks as the bound allows, as even as ceil division makes them: the drivers run
  // chunks of `chunk` samples and a last one of the rest (N = 33 under a bound of 32: 17 + 16).
  const int64_t chunks = (g.N + most - 1) / most;
  return chunks > 0 ? (g.N + chunks - 1) / chunks : 1;
}

ConvPlan plan_conv(const ConvGeom& g, ConvPass pass, int64_t elem_bytes) {
  // Measured on every conv of ResNet50/18 at 64x64, batch 32 (P = 1024, 256, 64, 16, 4;
  // bench/bench_conv --lowerings, docs/performance.md "Convolution"):
  //  - by pixels: the forward's one-sample GEMMs stay fast down to P = 64 (the weights are
  //    packed once per call, skinny products swapped); at P <= 16 batching wins, for the
  //    pointwise convs only at P <= 8 (below);
  //    backward data and weight gain from P = 16 down, and are even at P = 64;
  //  - by size: a chunk GEMM of fewer than 2^25 multiply-adds is too small to thread well
  //    inside (ResNet18's 1x1/2 downsamples at P = 16 and 4: 0.5-0.7x batched), while
  //    samples over threads split it evenly.
  // Since the GEMM packs B once per team (share_b), the forward's 3x3 and strided 1x1 convs
  // at P = 16 gain from batching too (implicit chunks: ResNet50 layer3 3x3 1.08x, its 1x1/2
  // downsample 1.36x, bench_conv); the pointwise ones at P = 16 still lose 7-11 % batched.
  const int64_t batched_up_to = pass != ConvPass::Forward ? 32 : g.pointwise() ? 8 : 16;
  const int64_t chunk = conv_chunk(g, elem_bytes);
  const int64_t chunk_macs = g.O * g.col_rows() * chunk * g.col_cols();
  ConvPlan plan{ConvLowering::Batched, chunk};
  if (g.col_cols() > batched_up_to || chunk_macs < (int64_t(1) << 25)) plan = {ConvLowering::PerSample, 1};
  // Implicit GEMM (the forward's B panels packed straight from x, no column matrix) where it
  // measured faster (bench_conv --implicit, 1 thread, docs/performance.md): GEMMs of >= 128
  // columns (the stem at P = 1024, 3x3 at P = 256, layer4's batched chunks: 0.99-1.9x), and
  // stride-1 ones of >= 64 (3x3 at P = 64: 0.80-1.26x, median 1.03). Per sample at P = 16 it
  // gained nothing and stride 2 at P <= 64 lost 2-7 %: output rows of 4-8 pixels make the
  // packer's per-segment bookkeeping cost as much as the small (L2-resident) column matrix.
  // Always >= kImplicitMinCols, where both paths give the same bits (a last, smaller chunk
  // goes through the column matrix: conv2d_forward_planned).
  const int64_t cols = plan.chunk * g.col_cols();
  plan.implicit = pass == ConvPass::Forward && elem_bytes == int64_t(sizeof(float)) && !g.pointwise() &&
                  (cols >= 128 || (g.SW == 1 && cols >= 64));
  return plan;
}

// gemm() runs inside the parallel regions below, where an exception cannot escape (it would
// end the program). Resolving which GEMM kernel runs here, before any region opens, turns a
// bad MINIDL_GEMM into an ordinary minidl::Error the caller can report.
inline void resolve_gemm_kernel() { (void)gemm_isa(); }

namespace {

// MINIDL_CONV_IMPLICIT=0 in the environment turns the implicit GEMM off everywhere (read
// once), for A/B timings of whole models (bench_train); the bits do not change.
bool implicit_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("MINIDL_CONV_IMPLICIT");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

// Whether the forward runs `plan` as an implicit GEMM: float only, and only with a fast GEMM
// kernel (the reference GEMM has no implicit form). Each GEMM of fewer than kImplicitMinCols
// columns still goes through the column matrix.
template <class T>
bool implicit_forward(const ConvGeom& g, const ConvPlan& plan) {
  if constexpr (std::is_same_v<T, float>)
    return plan.implicit && !g.pointwise() && implicit_enabled() && sgemm_selected() != SgemmIsa::reference;
  return false;
}

// The im2col matrix of samples [0, nb) of x as the GEMM's implicit op(B) (gemm_fast.h).
template <class T>
SgemmImage image_of(const ConvGeom& g, const T* x, int64_t nb) {
  if constexpr (std::is_same_v<T, float>)
    return SgemmImage{x, nb, g.C * g.H * g.W, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW};
  return SgemmImage{};
}

// MINIDL_CONV_PACK_W=0 in the environment turns the forward's weight packing off (read
// once), for A/B timings; the bits do not change.
bool pack_weights_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("MINIDL_CONV_PACK_W");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

// The PerSample forward and backward-data pass pack their weights once per call into the
// GEMM kernel's micro-panels (gemm_fast.h) for all the samples' GEMMs: W [O, K] for the
// forward, which the AVX-512 kernel otherwise reads in place for every sample (MR rows K
// floats apart; packed, one sequential stream); W^T [K, O] for backward data, which both
// kernels otherwise pack again for every sample (and every 256 columns of it). The Batched
// lowering runs one GEMM per chunk, a few per call: packing would not pay there.
// The buffer: the calling thread's workspace slot 2 (the size of W rounded up to whole
// tiles), filled and then read by the whole team. nullptr where the GEMMs cannot use it:
// not float, the reference GEMM, fewer than kPackWeightsMinSamples samples, fewer columns
// than min_cols (below which the dense call would take another path), or switched off.
constexpr int64_t kPackWeightsMinSamples = 4;
// The backward-data GEMM (op(A) = W^T, contiguous down its columns) swaps products of up to
// 3 MR = 24 columns (gemm_driver.inc); from 25 it runs the packed kernel unswapped.
constexpr int64_t kPrepackedTransMinCols = 25;
template <class T>
float* weight_panels(const ConvGeom& g, bool trans, int64_t min_cols) {
  if constexpr (std::is_same_v<T, float>) {
    if (!pack_weights_enabled() || g.N < kPackWeightsMinSamples || g.col_cols() < min_cols) return nullptr;
    const int64_t floats = trans ? sgemm_packed_a_floats(g.col_rows(), g.O) : sgemm_packed_a_floats(g.O, g.col_rows());
    return floats == 0 ? nullptr : conv_workspace<float>(2, floats);
  }
  return nullptr;
}

// Fills weight_panels' buffer: a worksharing loop over parts of the rows, so called by
// every thread of the enclosing parallel region (or outside one), with a barrier at the end.
template <class T>
void pack_weights(const ConvGeom& g, const T* w, bool trans, float* wp) {
  if constexpr (std::is_same_v<T, float>) {
    constexpr int64_t parts = 8;
    const int64_t K = g.col_rows();
#pragma omp for schedule(static)
    for (int64_t part = 0; part < parts; ++part)
      sgemm_pack_a(trans, trans ? K : g.O, trans ? g.O : K, w, K, part, parts, wp);
  }
}

// Y[O, N] (row stride N) = W · B[K, N] (row-major), or the image's columns when img is
// non-null, through the packed weights wp when given (N >= kImplicitMinCols: the same bits
// as the dense call), else the dense GEMM / the implicit one.
template <class T>
void forward_gemm(const ConvGeom& g, const float* wp, const T* w, const T* b, const SgemmImage* img, int64_t N, T* y) {
  const int64_t K = g.col_rows();
  if constexpr (std::is_same_v<T, float>) {
    if (wp && N >= kImplicitMinCols) return sgemm_prepacked(g.O, N, K, wp, b, N, img, y, N);
    if (img) {
      sgemm_image(g.O, N, K, w, K, *img, y, N);  // true: implicit_forward checked the kernel
      return;
    }
  }
  gemm(false, false, g.O, N, K, T(1), w, K, b, N, T(0), y, N);
}

// The epilogue on samples [n0, n0 + nb) of y (rows n*O + o of P values), in place.
template <class T>
void apply_epilogue(const ConvGeom& g, const ConvEpilogue<T>& ep, int64_t n0, int64_t nb, T* y) {
  const int64_t P = g.col_cols();
  const EvalAffineRowFn<T> row_fn = pick_eval_affine_row<T>(ep.residual != nullptr, ep.relu);
#pragma omp parallel for schedule(static) if (nb * g.O * P > kParallelCopyElems && !omp_in_parallel())
  for (int64_t r = n0 * g.O; r < (n0 + nb) * g.O; ++r) {
    const int64_t o = r % g.O;
    row_fn(y + r * P, ep.residual ? ep.residual + r * P : nullptr, y + r * P, P, ep.scale[o], ep.shift[o]);
  }
}

}  // namespace

template <class T>
void conv2d_forward_planned(const ConvGeom& g, const ConvPlan& plan, const T* x, const T* w, const T* bias, T* y,
                            const ConvEpilogue<T>* epilogue) {
  resolve_gemm_kernel();
  const int64_t K = g.col_rows(), P = g.col_cols(), chw = g.C * g.H * g.W;
  const bool implicit = implicit_forward<T>(g, plan);
  if (plan.lowering == ConvLowering::PerSample) {
    const bool implicit_ps = implicit && P >= kImplicitMinCols;
    float* wp = weight_panels<T>(g, false, kImplicitMinCols);
#pragma omp parallel if (g.N > 1 && worth_parallel(g))
    {
      if (wp) pack_weights(g, w, false, wp);
      T* col = g.pointwise() || implicit_ps ? nullptr : conv_workspace<T>(0, K * P);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.N; ++n) {
        const T* xn = x + n * chw;
        T* yn = y + n * g.O * P;
        if (implicit_ps) {
          const SgemmImage img = image_of(g, xn, 1);
          forward_gemm<T>(g, wp, w, nullptr, &img, P, yn);
        } else {
          if (!g.pointwise()) im2col(g, xn, col);
          forward_gemm<T>(g, wp, w, g.pointwise() ? xn : col, nullptr, P, yn);
        }
        if (bias)
          for (int64_t o = 0; o < g.O; ++o)
            for (int64_t i = 0; i < P; ++i) yn[o * P + i] += bias[o];
        if (epilogue) apply_epilogue(g, *epilogue, n, 1, y);  // while y_n is in cache
      }
    }
    return;
  }
  T* out = conv_workspace<T>(1, g.O * chunk_of(plan) * P);
  for_each_chunk(g, plan, [&](int64_t n0, int64_t nb) {
    if (implicit && nb * P >= kImplicitMinCols) {
      const SgemmImage img = image_of(g, x + n0 * chw, nb);
      forward_gemm<T>(g, nullptr, w, nullptr, &img, nb * P, out);
    } else {
      T* col = conv_workspace<T>(0, K * nb * P);
      lower_chunk(g, x + n0 * chw, nb, col);
      forward_gemm<T>(g, nullptr, w, col, nullptr, nb * P, out);
    }
    scatter_chunk(out, nb, g.O, P, bias, y + n0 * g.O * P);
    if (epilogue) apply_epilogue(g, *epilogue, n0, nb, y);  // the chunk just written (<= 4 MB)
  });
}

template <class T>
void conv2d_backward_input_planned(const ConvGeom& g, const ConvPlan& plan, const T* dy, const T* w, T* dx) {
  resolve_gemm_kernel();
  const int64_t K = g.col_rows(), P = g.col_cols(), chw = g.C * g.H * g.W;
  if (plan.lowering == ConvLowering::PerSample) {
    float* wp = weight_panels<T>(g, true, kPrepackedTransMinCols);
    // cols[K, P] = W^T dY_n, through the packed W^T when there is one (the same bits).
    auto backward_gemm = [&](const T* dyn, T* cols) {
      if constexpr (std::is_same_v<T, float>)
        if (wp) return sgemm_prepacked(K, P, g.O, wp, dyn, P, nullptr, cols, P);
      gemm(true, false, K, P, g.O, T(1), w, K, dyn, P, T(0), cols, P);
    };
#pragma omp parallel if (g.N > 1 && worth_parallel(g))
    {
      if (wp) pack_weights(g, w, true, wp);
      T* col = g.pointwise() ? nullptr : conv_workspace<T>(0, K * P);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.N; ++n) {
        T* dxn = dx + n * chw;
        const T* dyn = dy + n * g.O * P;
        if (g.pointwise()) {
          backward_gemm(dyn, dxn);
          continue;
        }
        backward_gemm(dyn, col);
        std::fill(dxn, dxn + chw, T(0));
        col2im(g, col, dxn);
      }
    }
    return;
  }
  T* col = conv_workspace<T>(0, K * chunk_of(plan) * P);
  T* dyc = conv_workspace<T>(1, g.O * chunk_of(plan) * P);
  for_each_chunk(g, plan, [&](int64_t n0, int64_t nb) {
    gather_chunk(dy + n0 * g.O * P, nb, g.O, P, dyc);
    gemm(true, false, K, nb * P, g.O, T(1), w, K, dyc, nb * P, T(0), col, nb * P);
    raise_chunk(g, col, nb, dx + n0 * chw);
  });
}

namespace {

// dW summed over samples [n0, n0 + count) one sample at a time, on the calling thread alone
// when inside a parallel region: dw = (beta ? dw : 0) + sum_n dY_n · cols(x_n)ᵀ. A sample's
// dY_n [O, P] (and a pointwise x_n) is read in place.
template <class T>
void weight_grad_samples(const ConvGeom& g, const T* dy, const T* x, int64_t n0, int64_t count, bool beta, T* dw) {
  const int64_t K = g.col_rows(), P = g.col_cols(), chw = g.C * g.H * g.W;
  T* col = g.pointwise() ? nullptr : conv_workspace<T>(0, K * P);
  for (int64_t n = n0; n < n0 + count; ++n) {
    const T* cols = x + n * chw;
    if (!g.pointwise()) {
      im2col(g, cols, col);
      cols = col;
    }
    gemm(false, true, g.O, K, P, T(1), dy + n * g.O * P, P, cols, P, beta || n > n0 ? T(1) : T(0), dw, K);
  }
}

// How many partial dW a PerSample backward-weight sums into: a power of two up to 8 (so that
// 1, 2, 4 or 8 threads get equal shares), never more than N, as many as keep the extra
// partials within kChunkBytes and each lane's sum long enough. From the shape alone, so the
// sum's order, and the bits, do not depend on the thread count.
int64_t weight_lanes(const ConvGeom& g, int64_t elem_bytes) {
  const int64_t partial = std::max<int64_t>(g.O * g.col_rows() * elem_bytes, 1);
  // Each lane should sum >= 64 products per dW element, or adding the partials (L - 1 adds
  // per element) becomes a noticeable part of the work (ResNet18's 1x1/2 at P = 4).
  const int64_t most = std::min({int64_t(8), g.N, g.N * g.col_cols() / 64, 1 + kChunkBytes / partial});
  int64_t lanes = 1;
  while (lanes * 2 <= most) lanes *= 2;
  return lanes;
}

}  // namespace

template <class T>
void conv2d_backward_weight_planned(const ConvGeom& g, const ConvPlan& plan, const T* dy, const T* x, T* dw, T* db) {
  resolve_gemm_kernel();
  const int64_t K = g.col_rows(), P = g.col_cols(), chw = g.C * g.H * g.W, OK = g.O * K;
  if (db) bias_grad(g, dy, db);
  if (g.N == 0) return std::fill(dw, dw + OK, T(0));
  if (plan.lowering == ConvLowering::PerSample) {
    // Lane l sums samples [N*l/L, N*(l+1)/L) in order: lane 0 into dw, the others into their
    // own partial; then dw += partial 1 + ... + partial L-1, in lane order. One parallel
    // region, each lane's GEMMs single-threaded (the lanes are the parallelism).
    const int64_t lanes = weight_lanes(g, sizeof(T));
    if (lanes == 1 || !worth_parallel(g)) return weight_grad_samples(g, dy, x, 0, g.N, false, dw);
    // One region (a fork and a join, one barrier between the two loops): on a shared
    // machine every synchronisation can cost a time slice.
    T* partial = conv_workspace<T>(1, (lanes - 1) * OK);
#pragma omp parallel
    {
#pragma omp for schedule(static)
      for (int64_t l = 0; l < lanes; ++l) {
        const int64_t lo = g.N * l / lanes, hi = g.N * (l + 1) / lanes;
        weight_grad_samples(g, dy, x, lo, hi - lo, false, l == 0 ? dw : partial + (l - 1) * OK);
      }
#pragma omp for schedule(static)
      for (int64_t i = 0; i < OK; ++i) {
        T s = dw[i];
        for (int64_t l = 1; l < lanes; ++l) s += partial[(l - 1) * OK + i];
        dw[i] = s;
      }
    }
    return;
  }
  T* col = conv_workspace<T>(0, K * chunk_of(plan) * P);
  T* dyc = conv_workspace<T>(1, g.O * chunk_of(plan) * P);
  for_each_chunk(g, plan, [&](int64_t n0, int64_t nb) {
    gather_chunk(dy + n0 * g.O * P, nb, g.O, P, dyc);
    lower_chunk(g, x + n0 * chw, nb, col);
    gemm(false, true, g.O, K, nb * P, T(1), dyc, nb * P, col, nb * P, n0 == 0 ? T(0) : T(1), dw, K);
  });
}

template <class T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, const ConvEpilogue<T>* epilogue) {
  conv2d_forward_planned(g, plan_conv(g, ConvPass::Forward, sizeof(T)), x, w, bias, y, epilogue);
}

template <class T>
void conv2d_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  conv2d_backward_input_planned(g, plan_conv(g, ConvPass::BackwardInput, sizeof(T)), dy, w, dx);
}

template <class T>
void conv2d_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw, T* db) {
  conv2d_backward_weight_planned(g, plan_conv(g, ConvPass::BackwardWeight, sizeof(T)), dy, x, dw, db);
}

#define MINIDL_INSTANTIATE(T)                                                                                     \
  template void conv2d_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*, const ConvEpilogue<T>*);     \
  template void conv2d_backward_input<T>(const ConvGeom&, const T*, const T*, T*);                                \
  template void conv2d_backward_weight<T>(const ConvGeom&, const T*, const T*, T*, T*);                           \
  template void conv2d_forward_planned<T>(const ConvGeom&, const ConvPlan&, const T*, const T*, const T*, T*,     \
                                          const ConvEpilogue<T>*);                                                \
  template void conv2d_backward_input_planned<T>(const ConvGeom&, const ConvPlan&, const T*, const T*, T*);       \
  template void conv2d_backward_weight_planned<T>(const ConvGeom&, const ConvPlan&, const T*, const T*, T*, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
