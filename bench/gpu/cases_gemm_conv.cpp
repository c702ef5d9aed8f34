// GEMM (ours vs cuBLAS) and convolution (ours vs cuDNN) cases of bench_kernels --device cuda.
#include <cmath>
#include <cstdio>

#include "bench/gpu/cases.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cuda/conv_own.h"
#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/gemm_tiled.h"

namespace bench::gpu {

namespace cu = minidl::cuda;
namespace cpu = minidl::cpu;

namespace {

// Row-major C [M, N] = op(A) op(B), op(A): M x K, op(B): K x N, both contenders on the
// same inputs into their own C.
Spec gemm_spec(const std::string& name, const std::string& group, int count, bool ta, bool tb, int64_t M, int64_t N,
               int64_t K, bool in_step = true) {
  char label[200];
  std::snprintf(label, sizeof label, "%s %ldx%ldx%ld%s%s", name.c_str(), long(M), long(N), long(K), ta ? " At" : "",
                tb ? " Bt" : "");
  return {label, group, count,
          [=] {
            const int64_t lda = ta ? M : K, ldb = tb ? K : N;
            const Buf a = random_floats(M * K, 1), b = random_floats(K * N, 2);
            const Buf c_ours = device_floats(M * N), c_peer = device_floats(M * N);
            const auto ours = [=] {
              cu::gemm_tiled(ta, tb, M, N, K, 1.f, a->f(), lda, b->f(), ldb, 0.f, c_ours->f(), N);
            };
            const auto peer = [=] {
              cu::cublas_sgemm(ta, tb, M, N, K, 1.f, a->f(), lda, b->f(), ldb, 0.f, c_peer->f(), N);
            };
            Case k;
            k.flop = 2.0 * double(M) * double(N) * double(K);
            k.peer_name = "cuBLAS";
            k.ours = ours, k.peer = peer;
            k.check = [=] {
              poison(c_ours->f(), M * N), poison(c_peer->f(), M * N);
              ours(), peer();
              return rel_err_device(c_ours->f(), c_peer->f(), M * N);
            };
            return k;
          },
          in_step};
}

enum class Pass { Fwd, Dx, Dw };
const char* const kPassName[] = {"fwd", "dx", "dw"};

std::string conv_label(const char* what, const char* pass, const std::string& tag, const ConvShape& s) {
  char label[200];
  std::snprintf(label, sizeof label, "%s %s %s %s %ldx%ld/%ld %ld->%ld %ldx%ld", what, pass, tag.c_str(),
                s.name.c_str(), long(s.K), long(s.K), long(s.S), long(s.C), long(s.O), long(s.H), long(s.W));
  return label;
}

Spec conv_spec(const ConvShape& s, int count, Pass pass, const RaceSize& size) {
  const std::string group = std::string("conv ") + kPassName[int(pass)] + " " + size.tag();
  return {conv_label("conv", kPassName[int(pass)], size.tag(), s), group, count, [=] {
            const int64_t N = size.batch;
            const cpu::ConvGeom g = cpu::make_conv_geom(N, s.C, s.H, s.W, s.O, s.K, s.K, s.S, s.S, s.P, s.P);
            const int64_t CKK = g.col_rows(), P = g.col_cols();
            const int64_t xn = N * g.C * g.H * g.W, yn = N * g.O * P, wn = g.O * CKK;
            const float ws = 1.f / std::sqrt(float(CKK));  // a He-like scale keeps outputs O(1)
            const Buf x = random_floats(xn, 3), w = random_floats(wn, 4, -ws, ws), dy = random_floats(yn, 5);
            const int64_t out_n = pass == Pass::Fwd ? yn : pass == Pass::Dx ? xn : wn;
            const Buf o_ours = device_floats(out_n), o_peer = device_floats(out_n);
            // The pass through our kernels (own) or cuDNN, into o.
            const auto run = [=](bool own, float* o) {
              if (pass == Pass::Fwd) {
                if (own)
                  cu::conv_own_forward(g, x->f(), w->f(), nullptr, o);
                else
                  cu::cudnn_conv_forward(g, x->f(), w->f(), nullptr, o);
              } else if (pass == Pass::Dx) {
                if (own)
                  cu::conv_own_backward_input(g, dy->f(), w->f(), o);
                else
                  cu::cudnn_conv_backward_data(g, dy->f(), w->f(), o);
              } else {
                if (own)
                  cu::conv_own_backward_weight(g, dy->f(), x->f(), o, nullptr);
                else
                  cu::cudnn_conv_backward_filter(g, dy->f(), x->f(), o, nullptr);
              }
            };
            Case k;
            k.flop = 2.0 * double(yn) * double(CKK);
            k.peer_name = "cuDNN";
            k.ours = [=] { run(true, o_ours->f()); };
            k.peer = [=] { run(false, o_peer->f()); };
            k.check = [=] {
              poison(o_ours->f(), out_n), poison(o_peer->f(), out_n);
              run(true, o_ours->f()), run(false, o_peer->f());
              return rel_err_device(o_ours->f(), o_peer->f(), out_n);
            };
            return k;
          }};
}

}  // namespace

std::vector<Spec> gemm_specs(const ResNetShapes& r, int batch) {
  std::vector<Spec> specs;
  for (int64_t n : {1024, 2048, 4096})
    specs.push_back(gemm_spec("gemm square", "gemm square", 1, false, false, n, n, n, false));
  const std::string tag = "b" + std::to_string(batch);
  for (Pass p : {Pass::Fwd, Pass::Dx, Pass::Dw})
    for (const auto& [s, count] : distinct_convs(r)) {
      if (p == Pass::Dx && !s.input_needs_grad) continue;
      const int64_t CKK = s.C * s.K * s.K, NP = int64_t(batch) * s.OH * s.OW;
      const std::string name = std::string("gemm ") + kPassName[int(p)] + " " + tag + " " + s.name;
      const std::string group = std::string("gemm ") + kPassName[int(p)] + " " + tag;
      if (p == Pass::Fwd)
        specs.push_back(gemm_spec(name, group, count, false, false, s.O, NP, CKK));
      else if (p == Pass::Dx)
        specs.push_back(gemm_spec(name, group, count, true, false, CKK, NP, s.O));
      else
        specs.push_back(gemm_spec(name, group, count, false, true, s.O, CKK, NP));
    }
  // fc: y [B, out] = x [B, in] W^T; dx = dy W; dW = dy^T x.
  const std::string fc = "gemm fc " + tag;
  specs.push_back(gemm_spec(fc + " fwd", fc, 1, false, true, batch, r.fc_out, r.fc_in));
  specs.push_back(gemm_spec(fc + " dx", fc, 1, false, false, batch, r.fc_in, r.fc_out));
  specs.push_back(gemm_spec(fc + " dw", fc, 1, true, false, r.fc_out, r.fc_in, batch));
  return specs;
}

std::vector<Spec> conv_specs(const ResNetShapes& r, const RaceSize& size) {
  std::vector<Spec> specs;
  for (Pass p : {Pass::Fwd, Pass::Dx, Pass::Dw})
    for (const auto& [s, count] : distinct_convs(r))
      if (p != Pass::Dx || s.input_needs_grad) specs.push_back(conv_spec(s, count, p, size));
  return specs;
}

}  // namespace bench::gpu
