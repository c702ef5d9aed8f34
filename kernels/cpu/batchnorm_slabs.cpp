// Batch norm for short rows (contracts and math in batchnorm.h): ResNet's 4x4 and 2x2 stages,
// where one (n, c) row holds 16 or 4 values.
//
// The row layout (batchnorm.cpp) walks one channel's N rows, C*HW values apart: for short rows
// that is a cache line or less per jump, plus a horizontal lane sum per row, and it ran at a
// third of the memory bandwidth. Here a thread takes a block of channels [c0, c0 + cb); for
// each sample n the block is one contiguous slab of w = cb*HW values, and the reductions run
// down the columns: acc[j] += term(slab_n[j]) for n = 0..N-1, an element-wise loop that
// vectorises with no reassociation. Every kChunkRows samples each channel's HW column sums
// are added into its double total, so the horizontal work is paid once per channel and chunk,
// not once per row. Per-channel constants (mean, scale, shift, the gradient's coefficients)
// are expanded into per-column arrays so that every sweep is a plain element-wise loop.
//
// A block is sized so that its share of each input (N*w values) stays in L2 for the next
// sweep. Channel c's sums are added in an order fixed by the shape alone (chunk by chunk; in a
// chunk each column in sample order, then the columns in order), not by the blocking or the
// thread count: results are bit-identical for any thread count.
#pragma GCC optimize("fp-contract=off")  // (a no-op on the baseline target; as in the AVX-512 copy)
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/batchnorm_slabs.h"
#include "kernels/cpu/bn_lanes.h"     // kLaneChunk
#include "kernels/cpu/elementwise.h"  // kParallelGrain
#include "kernels/cpu/gemm_fast.h"    // cpu_has_avx512
#include "tensor/error.h"

namespace minidl::cpu {

namespace {

// A float column sum adds at most this many terms before a double takes over (the same bound
// as a lane of bn_lanes.h).
constexpr int64_t kChunkRows = kLaneChunk / kLanes<float>;

struct Blocks {
  int64_t per, count;  // channels per block (the last may have fewer), number of blocks
};

// About kBnSlabBlockValues of each input per block (x, dy and relu's output stay in L2 between
// sweeps), and at least four blocks when there are four channels, so that two threads share
// the work evenly enough.
Blocks channel_blocks(int64_t N, int64_t C, int64_t HW) {
  const int64_t target = std::max<int64_t>(1, kBnSlabBlockValues / std::max<int64_t>(N, 1) / std::max<int64_t>(HW, 1));
  const int64_t per = std::max<int64_t>(1, std::min({target, C, (C + 3) / 4}));
  return {per, (C + per - 1) / per};
}

// One thread's working set for a block: the float column sums of the current chunk, up to
// four per-column constant rows, and the per-channel double totals.
template <class T>
struct Scratch {
  std::vector<T> acc_a, acc_b, col[4];
  std::vector<double> sum_a, sum_b;
  Scratch(int64_t w, int64_t cb) : acc_a(w), acc_b(w), sum_a(cb), sum_b(cb) {
    for (auto& c : col) c.resize(w);
  }
};

// sum_a[k] (sum_b[k]) = the sum over all samples and over channel k's HW columns of what
// row(n, acc_a, acc_b) adds into the column accumulators for sample n.
template <class T, class Row>
void reduce_columns(int64_t N, int64_t HW, int64_t cb, Scratch<T>& s, Row row) {
  const int64_t w = cb * HW;
  std::fill_n(s.sum_a.begin(), cb, 0.0);
  std::fill_n(s.sum_b.begin(), cb, 0.0);
  for (int64_t n0 = 0; n0 < N; n0 += kChunkRows) {
    std::fill_n(s.acc_a.begin(), w, T(0));
    std::fill_n(s.acc_b.begin(), w, T(0));
    for (int64_t n = n0; n < std::min(N, n0 + kChunkRows); ++n) row(n, s.acc_a.data(), s.acc_b.data());
    for (int64_t k = 0; k < cb; ++k)
      for (int64_t i = 0; i < HW; ++i) {
        s.sum_a[k] += s.acc_a[k * HW + i];
        s.sum_b[k] += s.acc_b[k * HW + i];
      }
  }
}

// col[k*HW + i] = v(k) for the block's channels k < cb.
template <class T, class F>
void expand(std::vector<T>& col, int64_t cb, int64_t HW, F v) {
  for (int64_t k = 0; k < cb; ++k) std::fill_n(col.begin() + k * HW, HW, T(v(k)));
}

// The loops compiled for the baseline x86-64; the AVX-512 copy is batchnorm_slabs_avx512.cpp.
#include "kernels/cpu/batchnorm_slab_loops.inc"

// The copy of the loops that runs (set_bn_slab_isa), read once per kernel call.
std::atomic<BnSlabIsa> g_isa{BnSlabIsa::automatic};

bool use_avx512() {
  const BnSlabIsa isa = g_isa.load(std::memory_order_relaxed);
  return isa == BnSlabIsa::avx512 || (isa == BnSlabIsa::automatic && cpu_has_avx512());
}

template <class T>
const SlabLoops<T>& slab_loops() {
  static const SlabLoops<T> baseline = make_slab_loops<T>();
  if (!use_avx512()) return baseline;
  if constexpr (sizeof(T) == 4) {
    static const SlabLoops<float> avx512 = slab_loops_avx512_f32();
    return avx512;
  } else {
    static const SlabLoops<double> avx512 = slab_loops_avx512_f64();
    return avx512;
  }
}

// The slab of block-start channel c0 for sample n in a [N, C, HW] tensor.
struct SlabAt {
  int64_t C, HW, c0;
  template <class P>
  P* operator()(P* base, int64_t n) const {
    return base + (n * C + c0) * HW;
  }
};

}  // namespace

template <class T>
void batchnorm_forward_train_slabs(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW,
                                   double eps, double momentum, T* y, T* save_mean, T* save_invstd, T* running_mean,
                                   T* running_var, const T* residual, bool relu) {
  const double M = double(N) * HW;
  const Blocks blocks = channel_blocks(N, C, HW);
  const SlabLoops<T>& loops = slab_loops<T>();
  const auto normalise = loops.normalise[residual != nullptr][relu];
#pragma omp parallel if (N * C * HW > kParallelGrain)
  {
    Scratch<T> s(blocks.per * HW, blocks.per);
#pragma omp for schedule(static) nowait  // (the region's end is the one barrier)
    for (int64_t b = 0; b < blocks.count; ++b) {
      const int64_t c0 = b * blocks.per, cb = std::min(blocks.per, C - c0), w = cb * HW;
      const SlabAt at{C, HW, c0};
      // Sweep 1: a first mean, only to shift the data by (any error in it is undone below).
      reduce_columns(N, HW, cb, s, [&](int64_t n, T* a, T*) { loops.add_values(at(x, n), a, w); });
      std::vector<T>& shift_by = s.col[0];
      expand(shift_by, cb, HW, [&](int64_t k) { return s.sum_a[k] / M; });
      // Sweep 2: deviations d = x - m from the rounded first mean m: mean = m + sum d / M and
      // M2 = sum d^2 - (sum d)^2 / M, exact whatever m is; |mean| >> std loses nothing.
      reduce_columns(N, HW, cb, s,
                     [&](int64_t n, T* a, T* q) { loops.add_deviations(at(x, n), shift_by.data(), a, q, w); });
      for (int64_t k = 0; k < cb; ++k) {
        const double dev = s.sum_a[k], sq = s.sum_b[k];
        const double mean = shift_by[k * HW] + dev / M;
        const double var = std::max(sq - dev * dev / M, 0.0) / M;
        const double invstd = 1.0 / std::sqrt(var + eps);
        const double scale = double(gamma[c0 + k]) * invstd, shift = double(beta[c0 + k]) - mean * scale;
        std::fill_n(s.col[1].begin() + k * HW, HW, T(scale));
        std::fill_n(s.col[2].begin() + k * HW, HW, T(shift));
        store_channel_stats(c0 + k, mean, var, invstd, M, momentum, save_mean, save_invstd, running_mean,
                            running_var);
      }
      // Sweep 3, from L2: y = epilogue(x * scale + shift).
      for (int64_t n = 0; n < N; ++n)
        normalise(at(x, n), residual ? at(residual, n) : nullptr, at(y, n), w, s.col[1].data(), s.col[2].data());
    }
  }
}

template <class T>
void batchnorm_forward_eval_slabs(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                  const T* running_var, int64_t N, int64_t C, int64_t HW, double eps, T* y,
                                  const T* residual, bool relu) {
  const Blocks blocks = channel_blocks(N, C, HW);
  const auto normalise = slab_loops<T>().normalise[residual != nullptr][relu];
#pragma omp parallel if (N * C * HW > kParallelGrain)
  {
    std::vector<T> scale(blocks.per * HW), shift(blocks.per * HW);
#pragma omp for schedule(static) nowait  // (the region's end is the one barrier)
    for (int64_t b = 0; b < blocks.count; ++b) {
      const int64_t c0 = b * blocks.per, cb = std::min(blocks.per, C - c0), w = cb * HW;
      const SlabAt at{C, HW, c0};
      for (int64_t k = 0; k < cb; ++k) {
        T sc, sh;
        eval_scale_shift(gamma[c0 + k], beta[c0 + k], running_mean[c0 + k], running_var[c0 + k], eps, sc, sh);
        std::fill_n(scale.begin() + k * HW, HW, sc);
        std::fill_n(shift.begin() + k * HW, HW, sh);
      }
      for (int64_t n = 0; n < N; ++n)
        normalise(at(x, n), residual ? at(residual, n) : nullptr, at(y, n), w, scale.data(), shift.data());
    }
  }
}

template <class T>
void batchnorm_backward_slabs(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N,
                              int64_t C, int64_t HW, bool training, T* dx, T* dgamma, T* dbeta, const T* relu_out,
                              T* d_residual) {
  const bool mask = relu_out != nullptr;
  const double M = double(N) * HW;
  const Blocks blocks = channel_blocks(N, C, HW);
  const SlabLoops<T>& loops = slab_loops<T>();
#pragma omp parallel if (N * C * HW > kParallelGrain)
  {
    Scratch<T> s(blocks.per * HW, blocks.per);
    std::vector<T>&mu = s.col[0], &tg = s.col[1], &tk = s.col[2], &te = s.col[3];
#pragma omp for schedule(static) nowait  // (the region's end is the one barrier)
    for (int64_t b = 0; b < blocks.count; ++b) {
      const int64_t c0 = b * blocks.per, cb = std::min(blocks.per, C - c0), w = cb * HW;
      const SlabAt at{C, HW, c0};
      auto out_at = [&](int64_t n) { return mask ? at(relu_out, n) : nullptr; };
      expand(mu, cb, HW, [&](int64_t k) { return mean[c0 + k]; });
      // Sweep 1: sum dy' and sum dy' (x - mean), dy' the masked gradient.
      reduce_columns(N, HW, cb, s, [&](int64_t n, T* a, T* q) {
        loops.add_grad_terms[mask](at(dy, n), out_at(n), at(x, n), mu.data(), a, q, w);
      });
      for (int64_t k = 0; k < cb; ++k) {
        const double sum_dy = s.sum_a[k], sum_dy_xhat = s.sum_b[k] * double(invstd[c0 + k]);
        if (dgamma) dgamma[c0 + k] = static_cast<T>(sum_dy_xhat);
        if (dbeta) dbeta[c0 + k] = static_cast<T>(sum_dy);
        const BnGradCoeffs<T> co = bn_grad_coeffs(gamma[c0 + k], invstd[c0 + k], sum_dy, sum_dy_xhat, M, training);
        std::fill_n(tg.begin() + k * HW, HW, co.g);
        std::fill_n(tk.begin() + k * HW, HW, co.k);
        std::fill_n(te.begin() + k * HW, HW, co.e);
      }
      // Sweep 2, from L2: the residual's gradient dy' and dx = g dy' - k (x - mean) - e.
      for (int64_t n = 0; n < N; ++n) {
        const T *d = at(dy, n), *o = out_at(n);
        if (d_residual) loops.masked_copy[mask](d, o, at(d_residual, n), w);
        if (dx && training)
          loops.dx_train[mask](d, o, at(x, n), mu.data(), tg.data(), tk.data(), te.data(), at(dx, n), w);
        else if (dx)
          loops.dx_eval[mask](d, o, tg.data(), at(dx, n), w);
      }
    }
  }
}

void set_bn_slab_isa(BnSlabIsa isa) {
  MINIDL_CHECK(isa != BnSlabIsa::avx512 || cpu_has_avx512(),
               "set_bn_slab_isa(avx512): this CPU (or its OS) lacks AVX-512 F/VL/BW/DQ");
  g_isa.store(isa, std::memory_order_relaxed);
}

const char* bn_slab_isa_name() { return use_avx512() ? "avx512" : "baseline"; }

#define MINIDL_INSTANTIATE(T)                                                                                     \
  template void batchnorm_forward_train_slabs<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, double, \
                                                 double, T*, T*, T*, T*, T*, const T*, bool);                     \
  template void batchnorm_forward_eval_slabs<T>(const T*, const T*, const T*, const T*, const T*, int64_t,        \
                                                int64_t, int64_t, double, T*, const T*, bool);                    \
  template void batchnorm_backward_slabs<T>(const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,   \
                                            int64_t, bool, T*, T*, T*, const T*, T*);
MINIDL_INSTANTIATE(float)
MINIDL_INSTANTIATE(double)
#undef MINIDL_INSTANTIATE

}  // namespace minidl::cpu
