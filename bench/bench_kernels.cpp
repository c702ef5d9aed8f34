// bench_kernels: minidl's kernels on the shapes of a ResNet50 training step, side by side
// with the same work done by established libraries: on the CPU (the default) against
// OpenBLAS and Eigen at 64x64, batch 32; on the GPU (--device cuda) against cuBLAS and cuDNN
// at the two sizes of the GPU race, 224x224 batch 64 and 64x64 batch 256.
//
//   build/bench/bench_kernels [--device cpu] [--filter TEXT] [--json FILE] [--threads T] [--reps R]
//                             [--openblas-core NAME] [--peak-isa avx2|avx512] [--batch N]
//                             [--check-samples S] [--no-check] [--no-eigen] [--quick]
//   build/bench/bench_kernels --device cuda [--filter TEXT] [--json FILE] [--reps R] [--warmup W]
//                             [--quick] [--no-check] [--list]
//
// ================================ CPU (--device cpu, the default)
//
//   --filter TEXT   only the cases whose name contains TEXT ("gemm", "conv fwd", "conv dx",
//                   "conv dw", "layer3", "bn", "maxpool", "gap", ...)
//   --json FILE     also write every row, the measured peaks and the summary as JSON
//   --threads T     threads for minidl, OpenBLAS and Eigen (default OMP_NUM_THREADS or all)
//   --reps R        timed repetitions per case; the table shows medians (default 5)
//   --openblas-core NAME  OPENBLAS_CORETYPE for OpenBLAS (Haswell: its AVX2 kernels,
//                   SkylakeX: AVX-512); Debian's OpenBLAS 0.3.21 takes this Xeon for a
//                   Prescott (SSE3) otherwise. It is read when OpenBLAS loads, so the bench
//                   re-runs itself with the variable set.
//   --peak-isa ISA  which FMA peak "%peak" refers to (default: the widest this CPU has)
//   --batch N       batch of the conv/BN/pool cases (default 32)
//   --check-samples S  samples the reference is run on for the error column (default 2)
//   --no-check      skip the error column
//   --no-eigen      leave Eigen out (its threaded GEMM is slow on the per-sample conv
//                   products, and it dominates the run time)
//   --quick         --reps 3 and shorter samples (a smoke run, not a measurement)
//
// Cases, all float32. "gemm sq N": C = A B, N x N x N, through cpu::gemm<float>. "conv
// fwd/dx/dw <layer>": cpu::conv2d_forward / conv2d_backward_input / conv2d_backward_weight
// on every distinct conv shape of ResNet50 at 64x64 (read off the model, bench/
// resnet_shapes.h; "x3" = how many layers share it; the stem has no dx case, training never
// computes it). The OpenBLAS and Eigen columns do the same convolution the classic way: per
// sample, im2col (minidl's, one thread; skipped for 1x1 stride-1 convs) then one threaded
// GEMM (cblas_sgemm / Eigen product); dx = col2im(Wᵀ dY), dW = Σ dY colᵀ. "bn fwd/bwd":
// batchnorm_forward_train and batchnorm_backward (training) on every distinct BN shape;
// "maxpool", "gap": the stem's 3x3/2 max pool and the global average pool, forward and
// backward. BN and pools have no OpenBLAS/Eigen peer ("-").
//
// Columns: median ms per call; GFLOP/s (2 per multiply-add) for GEMM and conv, GB/s for the
// memory-bound ops (compulsory traffic: every input read once, every output written once);
// "%peak" of the FMA peak the bench measures on T threads with a register-only loop (AVX2
// 8-float FMAs; AVX-512 16-float when the CPU has it), or for GB/s of the triad bandwidth
// it measures (64 MB arrays; the batch-32 tensors are smaller and may sit in cache, so this
// can pass 100%); the peers' rates; "x OB" / "x Eig" = median over repetitions of
// (peer time / our time) within the same repetition (>1: ours faster); "err" = max|got -
// ref| / max|ref| against the plain reference kernels (cpu::gemm_reference,
// conv2d_reference_*, batchnorm_*_reference, maxpool2d_forward_reference,
// global_avgpool_forward_reference; a loop here for the pools' backward), for conv
// and BN on the first S samples of the timed call (dw, which sums over the batch: a call on
// S samples). Each repetition runs ours, OpenBLAS and Eigen in turn, each for ~10 ms of
// back-to-back calls, with idle pauses so that one library's spinning workers do not steal
// the next one's cores (150 ms after OpenBLAS, whose threads spin ~0.1 s). Never asserts
// on time.
//
// ================================ GPU (--device cuda; bench/gpu/, CUDA builds only)
//
// Without a usable GPU it prints the reason (cuda_status()) and "skipped", exit 0; a build
// without CUDA says the backend is not built, exit 2. The first line names the GPU and the
// device-to-device copy bandwidth the bench measures (cudaMemcpyAsync of 1 GiB, bytes read +
// written): the "100%" of the memory-bound rows.
//   --filter, --json, --no-check  as on the CPU (names carry the size: "conv fwd @224/b64")
//   --reps R        timed samples per contender (default 10; the table shows medians)
//   --warmup W      untimed calls first (default 3: cuDNN's algorithm search, allocations)
//   --quick         --reps 3 --warmup 1 and ~0.5 ms samples (a smoke run)
//   --list          print the names of the cases (after --filter) and exit; needs no GPU
// Timing: cudaEvents recorded on cuda::stream() around a sample of back-to-back calls (as
// many as last ~2 ms), ours and the peer alternating sample by sample.
// Cases (float32; cuBLAS and cuDNN run plain FP32 math, no TF32):
//   "gemm square N", "gemm fwd|dx|dw b256 <conv>", "gemm fc": our tiled SGEMM
//     (kernels/cuda/gemm_tiled.h) vs cublas_sgemm; the conv rows are the GEMMs a conv lowers
//     to with the batch folded into the columns: fwd W [O,CKK] x col [CKK,N*OH*OW],
//     dx W^T dY, dw dY col^T (ResNet50 at 64x64, batch 256).
//   "conv fwd|dx|dw @224/b64|@64/b256 <layer>": our im2col + tiled-GEMM conv
//     (kernels/cuda/conv_own.h, called directly: MINIDL_CONV=own's path) vs cuDNN
//     (cudnn_conv.h) on every distinct ResNet50 conv shape.
//   "bn fwd|bwd ... [+relu|+add+relu]": batch norm training forward / backward on every
//     distinct BN with the epilogue ResNet's graph fuses there; "relu fwd|bwd", "add" on the
//     largest activation; "maxpool", "gap" as on the CPU; "adamw": the update over all
//     ResNet50 parameters, one launch per tensor (the optimizer's way) and one flat launch.
// Columns: "ours ms" and "peer ms" median per call; "rate" TFLOP/s (GEMM, conv) or GB/s of
// compulsory traffic (memory-bound, counted as on the CPU); "%copy" = GB/s of the measured
// copy bandwidth (small tensors may sit in L2 and pass 100%); "speed" = median over samples
// of (peer time / our time) (<1: ours slower); "err" = max|ours - ref| / max|ref| with the
// peer's result as ref (GEMM, conv) or the CPU kernel's on the same inputs (memory-bound),
// from fresh runs on NaN-poisoned outputs. Rows above the tolerance (1e-3) are marked and the
// exit code is 1. The end: per group, the count-weighted total of one ResNet50 step.
#include <cblas.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <limits>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "bench/resnet_shapes.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/pool.h"
#include "tensor/parallel.h"
#include "tensor/random.h"

#ifdef MINIDL_WITH_CUDA
#include "bench/gpu/kernels_cuda.h"
#endif

using namespace minidl;

namespace {

using Buf = std::vector<float>;

using Shared = std::shared_ptr<Buf>;  // the cases' closures share their buffers

Shared zeros(int64_t n) { return std::make_shared<Buf>(static_cast<size_t>(n), 0.f); }

Shared random_buf(int64_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator g(seed);
  Shared v = zeros(n);
  for (float& x : *v) x = float(g.uniform(lo, hi));
  return v;
}

// ----------------------------------------------------------------------- peer GEMMs
// Row-major C = op(A) op(B) + beta C with beta 0 (C not read) or 1.
using PeerGemm = void (*)(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

void openblas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                   int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              1.f, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<>;

template <class X, class Y, class Z>
void eigen_product(const X& a, const Y& b, float beta, Z& c) {
  if (beta == 0.f) c.noalias() = a * b;
  else c.noalias() += a * b;
}

void eigen_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                int64_t ldb, float beta, float* C, int64_t ldc) {
  const Eigen::Map<const RowMat, 0, Strided> a(A, ta ? K : M, ta ? M : K, Strided(lda)),
      b(B, tb ? N : K, tb ? K : N, Strided(ldb));
  Eigen::Map<RowMat, 0, Strided> c(C, M, N, Strided(ldc));
  if (ta && tb) eigen_product(a.transpose(), b.transpose(), beta, c);
  else if (ta) eigen_product(a.transpose(), b, beta, c);
  else if (tb) eigen_product(a, b.transpose(), beta, c);
  else eigen_product(a, b, beta, c);
}

// ------------------------------------------------------- conv the classic way (peers)
// Per sample n, with P = OH*OW, K = C*KH*KW and col = im2col(x_n) [K, P]:
//   y_n [O, P] = W [O, K] col;   dcol = Wᵀ dy_n, dx_n = col2im(dcol);   dW = Σ_n dy_n colᵀ.
// A 1x1 stride-1 unpadded conv's col is x_n itself.
bool is_pointwise(const cpu::ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0;
}

void peer_conv_forward(PeerGemm gemm, const cpu::ConvGeom& g, const float* x, const float* w, float* y, float* col) {
  const int64_t K = g.col_rows(), P = g.col_cols();
  for (int64_t n = 0; n < g.N; ++n) {
    const float* b = x + n * g.C * g.H * g.W;
    if (!is_pointwise(g)) cpu::im2col(g, b, col), b = col;
    gemm(false, false, g.O, P, K, w, K, b, P, 0.f, y + n * g.O * P, P);
  }
}

void peer_conv_backward_input(PeerGemm gemm, const cpu::ConvGeom& g, const float* dy, const float* w, float* dx,
                              float* col) {
  const int64_t K = g.col_rows(), P = g.col_cols(), plane = g.C * g.H * g.W;
  for (int64_t n = 0; n < g.N; ++n) {
    float* dxn = dx + n * plane;
    const bool direct = is_pointwise(g);
    gemm(true, false, K, P, g.O, w, K, dy + n * g.O * P, P, 0.f, direct ? dxn : col, P);
    if (!direct) std::fill(dxn, dxn + plane, 0.f), cpu::col2im(g, col, dxn);
  }
}

void peer_conv_backward_weight(PeerGemm gemm, const cpu::ConvGeom& g, const float* dy, const float* x, float* dw,
                               float* col) {
  const int64_t K = g.col_rows(), P = g.col_cols();
  for (int64_t n = 0; n < g.N; ++n) {
    const float* b = x + n * g.C * g.H * g.W;
    if (!is_pointwise(g)) cpu::im2col(g, b, col), b = col;
    gemm(false, true, g.O, K, P, dy + n * g.O * P, P, b, P, n == 0 ? 0.f : 1.f, dw, K);
  }
}

// ------------------------------------------------------------------------------ cases

struct Errors {
  double ours = -1, openblas = -1, eigen = -1;  // -1: not checked / no such contender
};

struct Case {
  double flop = 0, bytes = 0;                  // work per call: FLOPs, or compulsory bytes
  std::function<void()> ours, openblas, eigen;  // the peers may be empty
  std::function<Errors()> check;
};

struct Spec {
  std::string name, group;
  int count = 1;  // layers of the net with this shape (weights the per-step totals)
  std::function<Case()> make;
};

struct Settings {
  int threads = 0, reps = 5, batch = 32, check_samples = 2;
  bool check = true, quick = false, eigen = true;
  std::string filter, json, core, peak_isa;
};

Spec gemm_spec(int64_t n) {
  return {"gemm sq " + std::to_string(n), "gemm", 1, [n] {
            auto a = random_buf(n * n, 1), b = random_buf(n * n, 2);
            auto c = std::make_shared<std::vector<Buf>>(3, Buf(size_t(n * n)));
            Case k;
            k.flop = 2.0 * double(n * n * n);
            auto with = [=](int i, PeerGemm f) { return [=] { f(false, false, n, n, n, a->data(), n, b->data(), n, 0.f, (*c)[i].data(), n); }; };
            k.ours = with(0, [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
              cpu::gemm<float>(ta, tb, M, N, K, 1.f, A, lda, B, ldb, beta, C, ldc);
            });
            k.openblas = with(1, openblas_gemm);
            k.eigen = with(2, eigen_gemm);
            k.check = [=] {
              Buf ref(size_t(n * n));
              cpu::gemm_reference<float>(false, false, n, n, n, 1.f, a->data(), n, b->data(), n, 0.f, ref.data(), n);
              return Errors{bench::rel_err((*c)[0].data(), ref.data(), n * n), bench::rel_err((*c)[1].data(), ref.data(), n * n),
                            bench::rel_err((*c)[2].data(), ref.data(), n * n)};
            };
            return k;
          }};
}

enum class Pass { Fwd, Dx, Dw };

// One conv shape in one pass. Buffers: x [N,C,H,W], w [O,K], dy [N,O,P]; outputs per
// contender (0 ours, 1 OpenBLAS, 2 Eigen).
Spec conv_spec(const bench::ConvShape& s, int count, Pass pass, const Settings& st) {
  static const char* pass_name[] = {"fwd", "dx", "dw"};
  char label[160];
  std::snprintf(label, sizeof label, "conv %s %s %ldx%ld/%ld %ld->%ld %ldx%ld", pass_name[int(pass)], s.name.c_str(),
                long(s.K), long(s.K), long(s.S), long(s.C), long(s.O), long(s.H), long(s.W));
  const int64_t N = st.batch, S = std::min<int64_t>(st.check_samples, N);
  return {label, std::string("conv ") + pass_name[int(pass)], count, [=] {
            const cpu::ConvGeom g = cpu::make_conv_geom(N, s.C, s.H, s.W, s.O, s.K, s.K, s.S, s.S, s.P, s.P);
            const cpu::ConvGeom gs = cpu::make_conv_geom(S, s.C, s.H, s.W, s.O, s.K, s.K, s.S, s.S, s.P, s.P);
            const int64_t K = g.col_rows(), P = g.col_cols(), xs = g.C * g.H * g.W, ys = g.O * P;
            const float wscale = 1.f / std::sqrt(float(K));
            auto x = random_buf(N * xs, 3), w = random_buf(g.O * K, 4, -wscale, wscale),
                 dy = random_buf(N * ys, 5), col = zeros(K * P);
            const int64_t out_n = pass == Pass::Fwd ? N * ys : pass == Pass::Dx ? N * xs : g.O * K;
            auto out = std::make_shared<std::vector<Buf>>(3, Buf(static_cast<size_t>(out_n)));
            Case k;
            k.flop = 2.0 * double(N * ys) * double(K);
            // run(geometry, contender, output): the pass through minidl (0) or a peer GEMM.
            auto run = [=](const cpu::ConvGeom& gg, int who, float* o) {
              const PeerGemm peer = who == 1 ? openblas_gemm : eigen_gemm;
              if (pass == Pass::Fwd) {
                if (who == 0) cpu::conv2d_forward<float>(gg, x->data(), w->data(), nullptr, o);
                else peer_conv_forward(peer, gg, x->data(), w->data(), o, col->data());
              } else if (pass == Pass::Dx) {
                if (who == 0) cpu::conv2d_backward_input<float>(gg, dy->data(), w->data(), o);
                else peer_conv_backward_input(peer, gg, dy->data(), w->data(), o, col->data());
              } else {
                if (who == 0) cpu::conv2d_backward_weight<float>(gg, dy->data(), x->data(), o, nullptr);
                else peer_conv_backward_weight(peer, gg, dy->data(), x->data(), o, col->data());
              }
            };
            k.ours = [=] { run(g, 0, (*out)[0].data()); };
            k.openblas = [=] { run(g, 1, (*out)[1].data()); };
            k.eigen = [=] { run(g, 2, (*out)[2].data()); };
            k.check = [=] {
              // Forward and dx: the timed outputs' first S samples. dw sums over the batch,
              // so every contender runs again on S samples.
              const int64_t n = pass == Pass::Fwd ? S * ys : pass == Pass::Dx ? S * xs : g.O * K;
              Buf ref(static_cast<size_t>(n));
              std::vector<Buf> got = *out;
              if (pass == Pass::Fwd) cpu::conv2d_reference_forward<float>(gs, x->data(), w->data(), nullptr, ref.data());
              else if (pass == Pass::Dx) cpu::conv2d_reference_backward_input<float>(gs, dy->data(), w->data(), ref.data());
              else {
                cpu::conv2d_reference_backward_weight<float>(gs, dy->data(), x->data(), ref.data(), nullptr);
                for (int who = 0; who < 3; ++who) run(gs, who, got[size_t(who)].data());
              }
              return Errors{bench::rel_err(got[0].data(), ref.data(), n), bench::rel_err(got[1].data(), ref.data(), n),
                            bench::rel_err(got[2].data(), ref.data(), n)};
            };
            return k;
          }};
}

// Batch norm in training mode on [N, C, HW]: forward (statistics + normalise) or backward.
Spec bn_spec(int64_t C, int64_t HW, int count, bool backward, const Settings& st) {
  const int64_t N = st.batch, S = std::min<int64_t>(st.check_samples, N);
  const std::string name = std::string("bn ") + (backward ? "bwd" : "fwd") + " " + std::to_string(C) + "x" +
                           std::to_string(HW);
  return {name, backward ? "bn bwd" : "bn fwd", count, [=] {
            const int64_t n = N * C * HW;
            auto x = random_buf(n, 6, -2.f, 3.f), dy = random_buf(n, 7);
            auto gamma = random_buf(C, 8, 0.5f, 1.5f), beta = random_buf(C, 9);
            // Saved statistics for backward come from the reference forward; running stats are scratch.
            auto mean = zeros(C), invstd = zeros(C),
                 run_m = zeros(C), run_v = random_buf(C, 14, 0.5f, 2.f);
            auto y = zeros(n), dg = zeros(C), db = zeros(C);
            cpu::batchnorm_forward_train_reference<float>(x->data(), gamma->data(), beta->data(), N, C, HW, 1e-5, 0.1,
                                                          y->data(), mean->data(), invstd->data(), nullptr, nullptr);
            Case k;
            k.bytes = 4.0 * double(n) * (backward ? 3 : 2);
            if (!backward) {
              auto ym = zeros(C), yi = zeros(C);
              k.ours = [=] {
                cpu::batchnorm_forward_train<float>(x->data(), gamma->data(), beta->data(), N, C, HW, 1e-5, 0.1,
                                                    y->data(), ym->data(), yi->data(), run_m->data(), run_v->data());
              };
              k.check = [=] {
                const int64_t m = S * C * HW;
                Buf ys(static_cast<size_t>(m)), rm(static_cast<size_t>(C)), ri(static_cast<size_t>(C)), om(static_cast<size_t>(C)), oi(static_cast<size_t>(C)), oy(static_cast<size_t>(m));
                // Batch statistics depend on the whole batch: both run again on S samples.
                cpu::batchnorm_forward_train_reference<float>(x->data(), gamma->data(), beta->data(), S, C, HW, 1e-5,
                                                              0.1, ys.data(), rm.data(), ri.data(), nullptr, nullptr);
                cpu::batchnorm_forward_train<float>(x->data(), gamma->data(), beta->data(), S, C, HW, 1e-5, 0.1,
                                                    oy.data(), om.data(), oi.data(), nullptr, nullptr);
                return Errors{std::max({bench::rel_err(oy.data(), ys.data(), m), bench::rel_err(om.data(), rm.data(), C),
                                        bench::rel_err(oi.data(), ri.data(), C)})};
              };
            } else {
              auto dx = zeros(n);
              k.ours = [=] {
                cpu::batchnorm_backward<float>(dy->data(), x->data(), gamma->data(), mean->data(), invstd->data(), N, C,
                                               HW, true, dx->data(), dg->data(), db->data());
              };
              k.check = [=] {
                Buf rdx(static_cast<size_t>(n)), rdg(static_cast<size_t>(C)), rdb(static_cast<size_t>(C));
                cpu::batchnorm_backward_reference<float>(dy->data(), x->data(), gamma->data(), mean->data(),
                                                         invstd->data(), N, C, HW, true, rdx.data(), rdg.data(),
                                                         rdb.data());
                return Errors{std::max({bench::rel_err(dx->data(), rdx.data(), n), bench::rel_err(dg->data(), rdg.data(), C),
                                        bench::rel_err(db->data(), rdb.data(), C)})};
              };
            }
            return k;
          }};
}

Spec maxpool_spec(const bench::ResNetShapes& r, bool backward, const Settings& st) {
  const cpu::PoolGeom g = cpu::make_pool_geom(st.batch, r.pool_C, r.pool_H, r.pool_W, r.pool_K, r.pool_K, r.pool_S,
                                              r.pool_S, r.pool_P, r.pool_P);
  const std::string name = std::string("maxpool ") + (backward ? "bwd " : "fwd ") + std::to_string(g.KH) + "x" +
                           std::to_string(g.KW) + "/" + std::to_string(g.SH) + " " + std::to_string(g.C) + "x" +
                           std::to_string(g.H) + "x" + std::to_string(g.W);
  return {name, backward ? "maxpool bwd" : "maxpool fwd", 1, [=] {
            const int64_t in = g.N * g.C * g.H * g.W, outn = g.N * g.C * g.OH * g.OW;
            auto x = random_buf(in, 10), dy = random_buf(outn, 11);
            auto y = zeros(outn), dx = zeros(in);
            auto arg = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(outn)), ref_arg = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(outn));
            auto ref_y = zeros(outn);
            cpu::maxpool2d_forward_reference<float>(g, x->data(), ref_y->data(), ref_arg->data());
            Case k;
            // Forward reads x, writes y and the int32 argmax; backward reads dy and argmax, writes dx.
            k.bytes = 4.0 * double(in + 2 * outn);
            if (!backward) {
              k.ours = [=] { cpu::maxpool2d_forward<float>(g, x->data(), y->data(), arg->data()); };
              k.check = [=] {
                // A different argmax is a wrong result even when the values tie: count it as error 1.
                const bool same = *arg == *ref_arg;
                return Errors{bench::rel_err(y->data(), ref_y->data(), outn) + (same ? 0.0 : 1.0)};
              };
            } else {
              k.ours = [=] { cpu::maxpool2d_backward<float>(g, dy->data(), ref_arg->data(), dx->data()); };
              k.check = [=] {
                Buf ref(size_t(in), 0.f);
                const int64_t plane = g.H * g.W, oplane = g.OH * g.OW;
                for (int64_t o = 0; o < outn; ++o) ref[size_t(o / oplane * plane + (*ref_arg)[size_t(o)])] += (*dy)[size_t(o)];
                return Errors{bench::rel_err(dx->data(), ref.data(), in)};
              };
            }
            return k;
          }};
}

Spec gap_spec(const bench::ResNetShapes& r, bool backward, const Settings& st) {
  const int64_t NC = st.batch * r.gap_C, HW = r.gap_H * r.gap_W;
  const std::string name = std::string("gap ") + (backward ? "bwd " : "fwd ") + std::to_string(r.gap_C) + "x" +
                           std::to_string(r.gap_H) + "x" + std::to_string(r.gap_W);
  return {name, backward ? "gap bwd" : "gap fwd", 1, [=] {
            auto big = random_buf(NC * HW, 12), small = random_buf(NC, 13);
            auto out = zeros(backward ? NC * HW : NC);
            Case k;
            k.bytes = 4.0 * double(NC * HW + NC);
            k.ours = [=] {
              if (backward) cpu::global_avgpool_backward<float>(small->data(), NC, HW, out->data());
              else cpu::global_avgpool_forward<float>(big->data(), NC, HW, out->data());
            };
            k.check = [=] {
              // Backward has no library reference: it is one division and a broadcast.
              Buf ref(out->size());
              if (!backward) cpu::global_avgpool_forward_reference<float>(big->data(), NC, HW, ref.data());
              for (int64_t i = 0; backward && i < NC * HW; ++i)
                ref[static_cast<size_t>(i)] = float(double((*small)[static_cast<size_t>(i / HW)]) / double(HW));
              return Errors{bench::rel_err(out->data(), ref.data(), int64_t(ref.size()))};
            };
            return k;
          }};
}

std::vector<Spec> make_specs(const Settings& st) {
  Generator gen(7);
  const auto net = make_resnet("resnet50", 10, gen);
  const bench::ResNetShapes r = bench::trace_resnet(*net, 64);
  std::vector<Spec> specs;
  for (int64_t n : {256, 512, 1024}) specs.push_back(gemm_spec(n));
  // Distinct conv shapes in forward order, each with the number of layers sharing it.
  const std::vector<std::pair<bench::ConvShape, int>> convs = bench::distinct_convs(r);
  for (Pass p : {Pass::Fwd, Pass::Dx, Pass::Dw})
    for (const auto& [c, count] : convs)
      if (p != Pass::Dx || c.input_needs_grad) specs.push_back(conv_spec(c, count, p, st));
  // Every BN follows a conv and has its output's shape.
  std::map<std::pair<int64_t, int64_t>, int> bns;
  for (const bench::ConvShape& c : r.convs) ++bns[{c.O, c.OH * c.OW}];
  for (bool bwd : {false, true})
    for (const auto& [shape, count] : bns) specs.push_back(bn_spec(shape.first, shape.second, count, bwd, st));
  for (bool bwd : {false, true}) specs.push_back(maxpool_spec(r, bwd, st));
  for (bool bwd : {false, true}) specs.push_back(gap_spec(r, bwd, st));
  return specs;
}

Settings parse(int argc, char** argv) {
  Settings st;
  st.threads = omp_get_max_threads();
  bench::Flags f(argc, argv, "bench_kernels");
  while (f.next()) {
    if (f.is("--help") || f.is("-h")) {
      std::printf(
          "usage: bench_kernels [--device cpu] [--filter TEXT] [--json FILE] [--threads T] [--reps R]\n"
          "                     [--openblas-core NAME]\n"
          "                     [--peak-isa avx2|avx512] [--batch N] [--check-samples S] [--no-check] [--no-eigen]\n"
          "                     [--quick]\n"
          "GEMM, every ResNet50 conv shape at 64x64 (fwd, dx, dw), batch norm and pools: minidl vs OpenBLAS and\n"
          "Eigen, with medians, GFLOP/s or GB/s, %% of the measured peak and the error against the references.\n"
          "The comment at the top of bench/bench_kernels.cpp explains every column.\n"
          "bench_kernels --device cuda --help: the GPU tables (cuBLAS, cuDNN, memory-bound kernels).\n");
      std::exit(0);
    } else if (f.is("--device")) {
      if (f.value() != "cpu") f.fail("--device is cpu or cuda");
    } else if (f.is("--filter")) st.filter = f.value();
    else if (f.is("--json")) st.json = f.value();
    else if (f.is("--threads")) st.threads = f.int_value(1);
    else if (f.is("--reps")) st.reps = f.int_value(1);
    else if (f.is("--openblas-core")) st.core = f.value();
    else if (f.is("--peak-isa")) st.peak_isa = f.value();
    else if (f.is("--batch")) st.batch = f.int_value(1);
    else if (f.is("--check-samples")) st.check_samples = f.int_value(1);
    else if (f.is("--no-check")) st.check = false;
    else if (f.is("--no-eigen")) st.eigen = false;
    else if (f.is("--quick")) st.quick = true, st.reps = 3;
    else f.unknown();
  }
  if (!st.peak_isa.empty() && st.peak_isa != "avx2" && st.peak_isa != "avx512") f.fail("--peak-isa is avx2 or avx512");
  if (st.peak_isa == "avx512" && !bench::cpu_has_avx512f_isa()) f.fail("this CPU has no AVX-512");
  return st;
}

std::string fmt_rate(double v) {
  char b[32];
  std::snprintf(b, sizeof b, v > 0 ? "%.1f" : "-", v);
  return b;
}
std::string fmt_ratio(double q) {
  char b[32];
  std::snprintf(b, sizeof b, q > 0 ? "%.2f" : "-", q);
  return b;
}
std::string fmt_err(double e) {
  char b[32];
  std::snprintf(b, sizeof b, e >= 0 ? "%.1e" : "-", e);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::device_flag(argc, argv) == "cuda") {
#ifdef MINIDL_WITH_CUDA
    try {
      return bench::gpu::run_kernels_cuda(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_kernels --device cuda: %s\n", e.what());
      return 1;
    }
#else
    std::fprintf(stderr, "bench_kernels: --device cuda: this build has no CUDA backend (it was configured with "
                         "-DMINIDL_CUDA=OFF or without nvcc); rebuild with CUDA to run the GPU tables\n");
    return 2;
#endif
  }
  const Settings st = parse(argc, argv);
  {
    const std::vector<Spec> specs = make_specs(st);
    if (std::none_of(specs.begin(), specs.end(),
                     [&](const Spec& s) { return s.name.find(st.filter) != std::string::npos; })) {
      std::fprintf(stderr, "bench_kernels: no case name contains --filter '%s' (e.g. gemm, conv fwd, bn bwd, maxpool)\n",
                   st.filter.c_str());
      return 2;
    }
  }
  bench::reexec_with_openblas_core(st.core, argv, "bench_kernels");
  set_num_threads(st.threads);
  omp_set_num_threads(st.threads);
  openblas_set_num_threads(st.threads);
  Eigen::setNbThreads(st.threads);
  const double pause = 0.010, after_openblas = 0.150, sample_s = st.quick ? 0.005 : 0.010;

  const double avx2 = bench::measure_fma_peak(8, st.threads), avx512 = bench::measure_fma_peak(16, st.threads);
  const std::string isa = !st.peak_isa.empty() ? st.peak_isa : avx512 > 0 ? "avx512" : "avx2";
  const double peak = isa == "avx512" ? avx512 : avx2, triad = bench::measure_triad_gbs(st.threads);
  std::printf("bench_kernels: %d thread(s), median of %d, batch %d; OpenBLAS %s (core %s), Eigen %d.%d.%d (%s)\n",
              st.threads, st.reps, st.batch, openblas_get_config(), openblas_get_corename(), EIGEN_WORLD_VERSION,
              EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, Eigen::SimdInstructionSetsInUse());
  std::printf("measured on %d thread(s): FMA peak AVX2 %.1f GFLOP/s, AVX-512 %s; triad %.1f GB/s. %%peak = of the %s "
              "FMA peak (GFLOP/s rows) or of the triad (GB/s rows)\n",
              st.threads, avx2, avx512 > 0 ? (fmt_rate(avx512) + " GFLOP/s").c_str() : "not on this CPU", triad,
              isa == "avx512" ? "AVX-512" : "AVX2");
  if (std::string(openblas_get_corename()) == "Prescott")
    std::printf("note: OpenBLAS runs its SSE3 (Prescott) kernels here; --openblas-core Haswell gives its AVX2 ones\n");
  std::printf("%-52s %8s %8s %5s %9s %9s %6s %6s %8s %8s %8s\n", "case", "ours ms", "rate", "%peak", "OpenBLAS",
              "Eigen", "x OB", "x Eig", "err", "err OB", "err Eig");

  nlohmann::json rows = nlohmann::json::array();
  std::map<std::string, std::vector<double>> vs_ob;                 // per group: per-case ratios
  std::map<std::string, std::pair<double, double>> step_ms;        // per conv pass: ours, OpenBLAS (x count)
  bool all_ok = true;
  for (const Spec& spec : make_specs(st)) {
    if (spec.name.find(st.filter) == std::string::npos) continue;
    const Case k = spec.make();
    struct Who {
      const std::function<void()>* fn;
      double after;
      bench::Contender c;
      std::vector<double> t;
    };
    std::vector<Who> who;  // 0 ours, then the peers this case has
    who.push_back({&k.ours, pause, {}, {}});
    who.push_back({&k.openblas, after_openblas, {}, {}});
    const std::function<void()> none;
    who.push_back({st.eigen ? &k.eigen : &none, pause, {}, {}});
    for (Who& w : who)
      if (*w.fn) w.c.body = *w.fn, w.c.calibrate(sample_s), bench::idle_for(w.after);
    for (int r = 0; r < st.reps; ++r)  // alternate: machine noise lands on every contender alike
      for (Who& w : who)
        if (*w.fn) w.t.push_back(w.c.sample()), bench::idle_for(w.after);
    Errors e = st.check && k.check ? k.check() : Errors{};
    if (who[1].t.empty()) e.openblas = -1;  // a contender that did not run has no error
    if (who[2].t.empty()) e.eigen = -1;
    const double work = k.flop > 0 ? k.flop : k.bytes, t_ours = bench::median_of(who[0].t);
    auto rate = [&](const Who& w) { return w.t.empty() ? 0.0 : work / bench::median_of(w.t) / 1e9; };
    auto ratio = [&](const Who& w) {  // median of per-repetition (peer time / our time)
      std::vector<double> q;
      for (size_t i = 0; i < w.t.size(); ++i) q.push_back(w.t[i] / who[0].t[i]);
      return bench::median_of(q);
    };
    const double pct = 100 * rate(who[0]) / (k.flop > 0 ? peak : triad);
    const double x_ob = ratio(who[1]), x_eig = ratio(who[2]);
    const std::string label = spec.name + (spec.count > 1 ? " x" + std::to_string(spec.count) : "");
    std::printf("%-52s %8.3f %8.1f %4.0f%% %9s %9s %6s %6s %8s %8s %8s %s\n", label.c_str(), 1e3 * t_ours,
                rate(who[0]), pct, fmt_rate(rate(who[1])).c_str(), fmt_rate(rate(who[2])).c_str(),
                fmt_ratio(x_ob).c_str(), fmt_ratio(x_eig).c_str(), fmt_err(e.ours).c_str(),
                fmt_err(e.openblas).c_str(), fmt_err(e.eigen).c_str(), k.flop > 0 ? "GFLOP/s" : "GB/s");
    std::fflush(stdout);
    // A wrong result must not pass as a fast one: flag anything off by more than float
    // rounding over these reduction lengths.
    if (e.ours > 1e-3) all_ok = false, std::printf("  ^ ours disagrees with the reference\n");
    if (x_ob > 0) vs_ob[spec.group].push_back(x_ob);
    if (spec.group.rfind("conv", 0) == 0) {
      step_ms[spec.group].first += spec.count * 1e3 * t_ours;
      step_ms[spec.group].second += who[1].t.empty() ? 0 : spec.count * 1e3 * bench::median_of(who[1].t);
    }
    rows.push_back({{"case", spec.name}, {"group", spec.group}, {"count", spec.count}, {"ours_ms", 1e3 * t_ours},
                    {"unit", k.flop > 0 ? "GFLOP/s" : "GB/s"}, {"ours_rate", rate(who[0])}, {"ours_pct_peak", pct},
                    {"openblas_rate", rate(who[1])}, {"eigen_rate", rate(who[2])}, {"ratio_vs_openblas", x_ob},
                    {"ratio_vs_eigen", x_eig}, {"err_ours", e.ours}, {"err_openblas", e.openblas},
                    {"err_eigen", e.eigen}});
  }
  nlohmann::json summary;
  std::printf("summary (median ours/OpenBLAS speed ratio per group):");
  for (const auto& [group, q] : vs_ob) {
    std::printf(" %s %.2fx (%zu);", group.c_str(), bench::median_of(q), q.size());
    summary["median_ratio_vs_openblas"][group] = bench::median_of(q);
  }
  std::printf("\n");
  for (const auto& [group, ms] : step_ms) {
    std::printf("ResNet50 %s, all %s layers of one batch-%d step: ours %.1f ms, OpenBLAS %.1f ms\n", group.c_str(),
                st.filter.empty() ? "its" : "the filtered", st.batch, ms.first, ms.second);
    summary["step_ms"][group] = {{"ours", ms.first}, {"openblas", ms.second}};
  }
  if (!st.json.empty()) {
    const nlohmann::json out = {{"threads", st.threads},         {"reps", st.reps},
                                {"batch", st.batch},             {"openblas_core", openblas_get_corename()},
                                {"peak_isa", isa},               {"fma_peak_avx2_gflops", avx2},
                                {"fma_peak_avx512_gflops", avx512}, {"triad_gbs", triad},
                                {"rows", rows},                  {"summary", summary}};
    std::ofstream f(st.json);
    if (!(f << out.dump(2) << "\n")) {
      std::fprintf(stderr, "bench_kernels: cannot write --json file '%s'\n", st.json.c_str());
      return 1;
    }
  }
  if (!all_ok) std::printf("WARNING: some of our results disagree with the reference (see the rows marked ^)\n");
  return all_ok ? 0 : 1;
}
