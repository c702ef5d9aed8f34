// bench_memory_ops: the memory-bound kernels of issue 5 before and after their rewrite, on
// ResNet50's shapes at 64x64, batch 32: batch norm forward (train) and backward (the plain
// kernels, kept as batchnorm_*_reference, vs the one-read/lane-sum ones), the fused
// batch_norm_relu / batch_norm_add_relu ops vs relu(batch_norm(x) [+ id]) at the op level
// (forward + backward through the engine), the 3x3/2 max pool, global average pooling, and
// one AdamW step over ResNet50's 25.56M parameters (the old per-element loop is copied below).
//
//   build/bench/bench_memory_ops [--threads T] [--reps R] [--filter TEXT] [--bn-isa baseline|avx512]
//
// Each pair (old, new) runs alternately R times; prints the median times and the median of
// the per-pair old/new ratios (> 1: the new kernel is faster). No asserts on time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/batchnorm_slabs.h"  // set_bn_slab_isa
#include "kernels/cpu/pool.h"
#include "layers/adamw.h"
#include "tensor/factory.h"
#include "bench/bench_util.h"
#include "tensor/parallel.h"

using namespace minidl;

static std::string g_filter;  // --filter: run only the pairs whose label contains it
static bool wanted(const std::string& label) { return label.find(g_filter) != std::string::npos; }

static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// bytes > 0: also the new kernel's (and the old one's) effective bandwidth, bytes moved / time.
static void pair(const char* name, int reps, const std::function<void()>& old_fn, const std::function<void()>& new_fn,
                 double bytes = 0) {
  if (!wanted(name)) return;
  std::vector<double> to, tn, r;
  old_fn();
  new_fn();
  for (int k = 0; k < reps; ++k) {
    double t0 = now();
    old_fn();
    double t1 = now();
    new_fn();
    double t2 = now();
    to.push_back(t1 - t0);
    tn.push_back(t2 - t1);
    r.push_back((t1 - t0) / (t2 - t1));
  }
  auto med = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("%-52s old %8.3f ms  new %8.3f ms  median old/new %5.2fx", name, med(to) * 1e3, med(tn) * 1e3,
              med(r));
  if (bytes > 0) std::printf("  GB/s old %5.1f new %5.1f", bytes / med(to) * 1e-9, bytes / med(tn) * 1e-9);
  // On a loaded machine a 2-thread run often waits a whole scheduler slice (4-12 ms) for its
  // second thread; the best times show what the kernels do when they get the cores.
  const double bo = *std::min_element(to.begin(), to.end()), bn = *std::min_element(tn.begin(), tn.end());
  std::printf("  best %.3f/%.3f ms = %.2fx\n", bo * 1e3, bn * 1e3, bo / bn);
}

// The AdamW loop as it was before (one element at a time, std::sqrt and a division by
// sqrt(bc2) per element: not vectorised).
static void adamw_old(float* w, const float* g, float* mm, float* vv, int64_t n, double lr, double wd, int64_t t) {
  const double b1 = 0.9, b2 = 0.999;
  const double step_size = lr / (1.0 - std::pow(b1, double(t)));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, double(t)));
  const float tb1 = b1, tb2 = b2, ob1 = 1 - b1, ob2 = 1 - b2, tstep = step_size, tbc2 = bc2_sqrt, teps = 1e-8,
              tdecay = 1 - lr * wd;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    w[i] *= tdecay;
    mm[i] = tb1 * mm[i] + ob1 * g[i];
    vv[i] = tb2 * vv[i] + ob2 * g[i] * g[i];
    w[i] -= tstep * mm[i] / (std::sqrt(vv[i]) / tbc2 + teps);
  }
}

int main(int argc, char** argv) {
  int threads = 2, reps = 15;
  bench::Flags f(argc, argv, "bench_memory_ops");
  while (f.next()) {
    if (f.is("--threads")) threads = f.int_value(1);
    else if (f.is("--reps")) reps = f.int_value(1);
    else if (f.is("--filter")) g_filter = f.value();
    else if (f.is("--bn-isa")) {
      const std::string v = f.value();
      if (v != "baseline" && v != "avx512") f.fail("--bn-isa takes baseline or avx512");
      cpu::set_bn_slab_isa(v == "avx512" ? cpu::BnSlabIsa::avx512 : cpu::BnSlabIsa::baseline);
    }
    else if (f.is("--help") || f.is("-h")) {
      std::printf("usage: bench_memory_ops [--threads T (2)] [--reps R (15)] [--filter TEXT] [--bn-isa baseline|avx512]\n"
                  "old (reference / previous) vs new memory-bound kernels on ResNet50 shapes; see the file's top.\n");
      return 0;
    } else f.unknown();
  }
  set_num_threads(threads);
  std::printf("threads %d, reps %d, slab batch norm loops: %s\n", threads, reps, cpu::bn_slab_isa_name());

  // ---- BN kernels on ResNet50 shapes at 64x64, batch 32 ----
  struct S {
    const char* name;
    int64_t N, C, HW;
  };
  for (S s : {S{"stem bn1 [32,64,32x32]", 32, 64, 1024}, S{"layer1 bn3 [32,256,16x16]", 32, 256, 256},
              S{"layer2 bn3 [32,512,8x8]", 32, 512, 64}, S{"layer3 bn3 [32,1024,4x4]", 32, 1024, 16},
              S{"layer4 bn3 [32,2048,2x2]", 32, 2048, 4}}) {
    const int64_t n = s.N * s.C * s.HW;
    Generator gen(1);
    Tensor x = randn({n}, DType::Float32, gen), dy = randn({n}, DType::Float32, gen), y = Tensor::empty({n});
    Tensor dx = Tensor::empty({n});
    std::vector<float> gamma(s.C, 1.0f), beta(s.C, 0.0f), mean(s.C), invstd(s.C), rm(s.C, 0.f), rv(s.C, 1.f),
        dg(s.C), db(s.C);
    char label[128];
    std::snprintf(label, sizeof label, "BN fwd train  %s", s.name);
    pair(
        label, reps,
        [&] {
          cpu::batchnorm_forward_train_reference(x.data<float>(), gamma.data(), beta.data(), s.N, s.C, s.HW, 1e-5, 0.1,
                                                 y.data<float>(), mean.data(), invstd.data(), rm.data(), rv.data());
        },
        [&] {
          cpu::batchnorm_forward_train(x.data<float>(), gamma.data(), beta.data(), s.N, s.C, s.HW, 1e-5, 0.1,
                                       y.data<float>(), mean.data(), invstd.data(), rm.data(), rv.data());
        });
    std::snprintf(label, sizeof label, "BN backward   %s", s.name);
    pair(
        label, reps,
        [&] {
          cpu::batchnorm_backward_reference(dy.data<float>(), x.data<float>(), gamma.data(), mean.data(), invstd.data(),
                                            s.N, s.C, s.HW, true, dx.data<float>(), dg.data(), db.data());
        },
        [&] {
          cpu::batchnorm_backward(dy.data<float>(), x.data<float>(), gamma.data(), mean.data(), invstd.data(), s.N,
                                  s.C, s.HW, true, dx.data<float>(), dg.data(), db.data());
        });
  }

  // ---- BN layouts: rows (the fast kernels before the slab layout) vs slabs, on the ResNet50
  // BN shapes at 64x64 batch 32 (every C x HW that occurs, but layer1's 128 and layer3's 512
  // channels at 16x16 and 8x8 are covered by their neighbours); GB/s counts each tensor read
  // or written once (x, dy, relu's output, identity in; y, dx, d_identity out).
  std::printf("-- BN layouts: old = rows, new = slabs (automatic picks slabs for N*HW <= %lld)\n",
              (long long)cpu::kBnSlabBlockValues);
  for (S s : {S{"stem [32,64,32x32]", 32, 64, 1024}, S{"layer1 [32,64,16x16]", 32, 64, 256},
              S{"layer1 [32,256,16x16]", 32, 256, 256}, S{"layer2 [32,128,8x8]", 32, 128, 64},
              S{"layer2 [32,512,8x8]", 32, 512, 64},
              S{"layer3 [32,256,4x4]", 32, 256, 16}, S{"layer3 [32,1024,4x4]", 32, 1024, 16},
              S{"layer4 [32,512,2x2]", 32, 512, 4}, S{"layer4 [32,2048,2x2]", 32, 2048, 4},
              // at 224x224 (where automatic keeps rows: N*HW above a slab block)
              S{"224px stem [32,64,112x112]", 32, 64, 12544}, S{"224px layer1 [32,256,56x56]", 32, 256, 3136}}) {
    const int64_t n = s.N * s.C * s.HW;
    const double tb = double(n) * sizeof(float);  // one tensor's bytes
    Generator gen(1);
    Tensor x = randn({n}, DType::Float32, gen), dy = randn({n}, DType::Float32, gen), id = randn({n}, DType::Float32, gen);
    Tensor y = Tensor::empty({n}), dx = Tensor::empty({n}), did = Tensor::empty({n});
    std::vector<float> gamma(s.C, 1.0f), beta(s.C, 0.0f), mean(s.C), invstd(s.C), rm(s.C, 0.f), rv(s.C, 1.f),
        dg(s.C), db(s.C);
    using L = cpu::BnLayout;
    auto fwd = [&](L layout, bool training, const float* residual, bool relu) {
      if (training)
        cpu::batchnorm_forward_train(x.data<float>(), gamma.data(), beta.data(), s.N, s.C, s.HW, 1e-5, 0.1,
                                     y.data<float>(), mean.data(), invstd.data(), rm.data(), rv.data(), residual, relu,
                                     layout);
      else
        cpu::batchnorm_forward_eval(x.data<float>(), gamma.data(), beta.data(), rm.data(), rv.data(), s.N, s.C, s.HW,
                                    1e-5, y.data<float>(), residual, relu, layout);
    };
    auto bwd = [&](L layout, const float* relu_out, float* d_res) {
      cpu::batchnorm_backward(dy.data<float>(), x.data<float>(), gamma.data(), mean.data(), invstd.data(), s.N, s.C,
                              s.HW, true, dx.data<float>(), dg.data(), db.data(), relu_out, d_res, layout);
    };
    fwd(L::rows, true, id.data<float>(), true);  // y: a relu output with zeros, for the masks below
    Tensor relu_out = y.clone();
    char label[128];
    auto row = [&](const char* what, const std::function<void(L)>& fn, double tensors) {
      std::snprintf(label, sizeof label, "%-20s %s", what, s.name);
      pair(label, reps, [&] { fn(L::rows); }, [&] { fn(L::slabs); }, tensors * tb);
    };
    row("BN fwd train", [&](L l) { fwd(l, true, nullptr, false); }, 2);
    row("BN fwd train+add+relu", [&](L l) { fwd(l, true, id.data<float>(), true); }, 3);
    row("BN fwd eval+relu", [&](L l) { fwd(l, false, nullptr, true); }, 2);
    row("BN backward", [&](L l) { bwd(l, nullptr, nullptr); }, 3);
    row("BN backward relu", [&](L l) { bwd(l, relu_out.data<float>(), nullptr); }, 4);
    row("BN backward add+relu", [&](L l) { bwd(l, relu_out.data<float>(), did.data<float>()); }, 5);
  }

  // ---- op level: relu(batch_norm(x)) (+ identity) vs the fused ops, forward + backward ----
  for (bool add : {false, true}) {
    const Shape sh{32, 256, 16, 16};
    Generator gen(2);
    Tensor x = randn(sh, DType::Float32, gen).requires_grad_(), id = randn(sh, DType::Float32, gen).requires_grad_();
    Tensor w = ones({256}).requires_grad_(), b = zeros({256}).requires_grad_();
    Tensor rm = zeros({256}), rv = ones({256}), G = randn(sh, DType::Float32, gen);
    auto run = [&](bool fused) {
      Tensor out;
      if (fused) out = add ? batch_norm_add_relu(x, id, w, b, rm, rv, true) : batch_norm_relu(x, w, b, rm, rv, true);
      else out = add ? relu(batch_norm(x, w, b, rm, rv, true) + id) : relu(batch_norm(x, w, b, rm, rv, true));
      out.backward(G);
      for (Tensor* t : {&x, &id, &w, &b}) t->zero_grad();
    };
    pair(add ? "op fwd+bwd relu(bn(x)+id) vs bn_add_relu [32,256,16x16]"
             : "op fwd+bwd relu(bn(x)) vs batch_norm_relu [32,256,16x16]",
         reps, [&] { run(false); }, [&] { run(true); });
  }

  // ---- max pool 3x3/2 pad 1 on the stem output ----
  {
    const cpu::PoolGeom g = cpu::make_pool_geom(32, 64, 32, 32, 3, 3, 2, 2, 1, 1);
    Generator gen(3);
    Tensor x = randn({32, 64, 32, 32}, DType::Float32, gen), y = Tensor::empty({32, 64, 16, 16});
    std::vector<int32_t> am(y.numel());
    pair("maxpool 3x3/2 p1 fwd [32,64,32x32]", reps,
         [&] { cpu::maxpool2d_forward_reference(g, x.data<float>(), y.data<float>(), am.data()); },
         [&] { cpu::maxpool2d_forward(g, x.data<float>(), y.data<float>(), am.data()); });
  }

  // ---- global average pool [32,2048,2x2] and [32,512,7x7] ----
  for (int64_t HW : {4, 49}) {
    const int64_t NC = 32 * (HW == 4 ? 2048 : 512);
    Generator gen(4);
    Tensor x = randn({NC * HW}, DType::Float32, gen), y = Tensor::empty({NC});
    pair(HW == 4 ? "global avgpool fwd [32,2048,2x2]" : "global avgpool fwd [32,512,7x7]", reps,
         [&] { cpu::global_avgpool_forward_reference(x.data<float>(), NC, HW, y.data<float>()); },
         [&] { cpu::global_avgpool_forward(x.data<float>(), NC, HW, y.data<float>()); });
  }

  // ---- AdamW over resnet50's parameter count (25.56M floats) as one tensor ----
  if (wanted("AdamW step, 25.56M params (resnet50) one tensor")) {  // (its setup alone takes seconds)
    const int64_t n = 25557032;
    Generator gen(5);
    Tensor p_old = randn({n}, DType::Float32, gen), g = randn({n}, DType::Float32, gen);
    Tensor m_old = zeros({n}), v_old = zeros({n});
    Tensor p_new = p_old.clone().requires_grad_();
    p_new.set_grad(g);
    AdamW opt({p_new}, {.lr = 1e-3, .weight_decay = 1e-2});
    int64_t t = 0;
    pair("AdamW step, 25.56M params (resnet50) one tensor", std::max(5, reps / 3),
         [&] { adamw_old(p_old.data<float>(), g.data<float>(), m_old.data<float>(), v_old.data<float>(), n, 1e-3, 1e-2, ++t); },
         [&] { opt.step(); });
  }
  return 0;
}
