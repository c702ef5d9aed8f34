// bench_conv: the CPU convolution before and after issue 5's conv work, on every conv layer
// shape of ResNet50 and ResNet18 at 64x64 input (batch 32 by default), forward, backward
// data (dx) and backward weight (dw, with db). Prints a table and per-group medians; no
// asserts on time.
//
//   build/bench/bench_conv [--threads T] [--reps R] [--batch N] [--filter TEXT] [--lowerings] [--implicit]
//
// Contenders, alternated within each repetition (same moment, same noise on a shared
// machine): "old" is conv2d.cpp as of commit 29c2680 (per-sample im2col with a bounds test
// per element, samples over threads, dW through per-thread partial buffers), copied below;
// "new" is cpu::conv2d_* (plan_conv's choice). With --lowerings also both lowerings forced
// (PerSample; Batched with plan_conv's chunk), to check plan_conv's choice per shape.
// With --implicit also the forward through the column matrix (plan_conv's plan with
// implicit = false: im2col, then the GEMM packs the columns) against plan_conv's plan (the
// implicit GEMM where it says so), column "colmat/new"; the backward passes are then skipped.
// Within a repetition the two contenders' calls alternate one by one; a repetition's ratio
// is the median of its per-pair ratios (old / new), its times the median calls; the table
// shows the medians over repetitions.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "tensor/parallel.h"
#include "tensor/random.h"

using namespace minidl;
using cpu::ConvGeom;

namespace old {  // conv2d.cpp at commit 29c2680, the baseline

bool worth_parallel(const ConvGeom& g) { return g.N > 1 && g.N * g.O * g.col_rows() * g.col_cols() > (1 << 18); }

void im2col(const ConvGeom& g, const float* x, float* col) {
  const int64_t cols = g.col_cols();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t p = 0; p < g.KH; ++p)
      for (int64_t q = 0; q < g.KW; ++q) {
        float* row = col + ((c * g.KH + p) * g.KW + q) * cols;
        for (int64_t i = 0; i < g.OH; ++i) {
          const int64_t h = i * g.SH - g.PH + p;
          float* out = row + i * g.OW;
          if (h < 0 || h >= g.H) {
            std::fill(out, out + g.OW, 0.f);
            continue;
          }
          const float* src = x + (c * g.H + h) * g.W;
          for (int64_t j = 0; j < g.OW; ++j) {
            const int64_t w = j * g.SW - g.PW + q;
            out[j] = (w >= 0 && w < g.W) ? src[w] : 0.f;
          }
        }
      }
}

void forward(const ConvGeom& g, const float* x, const float* w, float* y) {
  const int64_t K = g.col_rows(), P = g.col_cols();
#pragma omp parallel if (worth_parallel(g))
  {
    std::vector<float> col(g.pointwise() ? 0 : K * P);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      const float* xn = x + n * g.C * g.H * g.W;
      const float* cols = xn;
      if (!g.pointwise()) {
        im2col(g, xn, col.data());
        cols = col.data();
      }
      cpu::gemm(false, false, g.O, P, K, 1.f, w, K, cols, P, 0.f, y + n * g.O * P, P);
    }
  }
}

void backward_input(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  const int64_t K = g.col_rows(), P = g.col_cols();
#pragma omp parallel if (worth_parallel(g))
  {
    std::vector<float> col(g.pointwise() ? 0 : K * P);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      float* dxn = dx + n * g.C * g.H * g.W;
      const float* dyn = dy + n * g.O * P;
      if (g.pointwise()) {
        cpu::gemm(true, false, K, P, g.O, 1.f, w, K, dyn, P, 0.f, dxn, P);
        continue;
      }
      cpu::gemm(true, false, K, P, g.O, 1.f, w, K, dyn, P, 0.f, col.data(), P);
      std::fill(dxn, dxn + g.C * g.H * g.W, 0.f);
      for (int64_t c = 0; c < g.C; ++c)  // col2im
        for (int64_t p = 0; p < g.KH; ++p)
          for (int64_t q = 0; q < g.KW; ++q) {
            const float* row = col.data() + ((c * g.KH + p) * g.KW + q) * P;
            for (int64_t i = 0; i < g.OH; ++i) {
              const int64_t h = i * g.SH - g.PH + p;
              if (h < 0 || h >= g.H) continue;
              float* dst = dxn + (c * g.H + h) * g.W;
              for (int64_t j = 0; j < g.OW; ++j) {
                const int64_t ww = j * g.SW - g.PW + q;
                if (ww >= 0 && ww < g.W) dst[ww] += row[i * g.OW + j];
              }
            }
          }
    }
  }
}

void backward_weight(const ConvGeom& g, const float* dy, const float* x, float* dw, float* db) {
  const int64_t K = g.col_rows(), P = g.col_cols();
  const int max_threads = omp_in_parallel() || !worth_parallel(g) ? 1 : omp_get_max_threads();
  std::vector<std::vector<float>> partial(max_threads);
  int granted = 1;
#pragma omp parallel num_threads(max_threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
    granted = nt;
    partial[t].assign(g.O * K, 0.f);
    std::vector<float> col(g.pointwise() ? 0 : K * P);
    const int64_t lo = g.N * t / nt, hi = g.N * (t + 1) / nt;
    for (int64_t n = lo; n < hi; ++n) {
      const float* xn = x + n * g.C * g.H * g.W;
      const float* cols = xn;
      if (!g.pointwise()) {
        im2col(g, xn, col.data());
        cols = col.data();
      }
      cpu::gemm(false, true, g.O, K, P, 1.f, dy + n * g.O * P, P, cols, P, 1.f, partial[t].data(), K);
    }
  }
  for (int64_t i = 0; i < g.O * K; ++i) {
    float s = 0;
    for (int t = 0; t < granted; ++t) s += partial[t][i];
    dw[i] = s;
  }
  for (int64_t o = 0; o < g.O; ++o) {
    double s = 0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t i = 0; i < P; ++i) s += dy[(n * g.O + o) * P + i];
    db[o] = static_cast<float>(s);
  }
}

}  // namespace old

namespace {

using Clock = std::chrono::steady_clock;

struct Layer {
  const char* net;    // "rn50", "rn18" or "both"
  const char* group;  // where it sits: stem, l1..l4
  const char* name;
  int64_t C, H, O, k, s, p;
};

// ResNet50 (torchvision v1.5: the stride sits in the 3x3) and ResNet18 at 64x64: the stem
// gives 32x32, the max pool 16x16, then layers 1-4 run at 16, 8, 4, 2.
const Layer kLayers[] = {
    {"both", "stem", "7x7/2 3->64", 3, 64, 64, 7, 2, 3},
    {"rn50", "l1", "1x1 64->64", 64, 16, 64, 1, 1, 0},
    {"both", "l1", "3x3 64->64", 64, 16, 64, 3, 1, 1},
    {"rn50", "l1", "1x1 64->256", 64, 16, 256, 1, 1, 0},
    {"rn50", "l1", "1x1 256->64", 256, 16, 64, 1, 1, 0},
    {"rn50", "l2", "1x1 256->128", 256, 16, 128, 1, 1, 0},
    {"rn50", "l2", "3x3/2 128->128", 128, 16, 128, 3, 2, 1},
    {"rn50", "l2", "ds 1x1/2 256->512", 256, 16, 512, 1, 2, 0},
    {"rn50", "l2", "3x3 128->128", 128, 8, 128, 3, 1, 1},
    {"rn50", "l2", "1x1 128->512", 128, 8, 512, 1, 1, 0},
    {"rn50", "l2", "1x1 512->128", 512, 8, 128, 1, 1, 0},
    {"rn50", "l3", "1x1 512->256", 512, 8, 256, 1, 1, 0},
    {"rn50", "l3", "3x3/2 256->256", 256, 8, 256, 3, 2, 1},
    {"rn50", "l3", "ds 1x1/2 512->1024", 512, 8, 1024, 1, 2, 0},
    {"rn50", "l3", "3x3 256->256", 256, 4, 256, 3, 1, 1},
    {"rn50", "l3", "1x1 256->1024", 256, 4, 1024, 1, 1, 0},
    {"rn50", "l3", "1x1 1024->256", 1024, 4, 256, 1, 1, 0},
    {"rn50", "l4", "1x1 1024->512", 1024, 4, 512, 1, 1, 0},
    {"rn50", "l4", "3x3/2 512->512", 512, 4, 512, 3, 2, 1},
    {"rn50", "l4", "ds 1x1/2 1024->2048", 1024, 4, 2048, 1, 2, 0},
    {"rn50", "l4", "3x3 512->512", 512, 2, 512, 3, 1, 1},
    {"rn50", "l4", "1x1 512->2048", 512, 2, 2048, 1, 1, 0},
    {"rn50", "l4", "1x1 2048->512", 2048, 2, 512, 1, 1, 0},
    {"rn18", "l2", "3x3/2 64->128", 64, 16, 128, 3, 2, 1},
    {"rn18", "l2", "ds 1x1/2 64->128", 64, 16, 128, 1, 2, 0},
    {"rn18", "l3", "3x3/2 128->256", 128, 8, 256, 3, 2, 1},
    {"rn18", "l3", "ds 1x1/2 128->256", 128, 8, 256, 1, 2, 0},
    {"rn18", "l4", "3x3/2 256->512", 256, 4, 512, 3, 2, 1},
    {"rn18", "l4", "ds 1x1/2 256->512", 256, 4, 512, 1, 2, 0},
    // rn18's 3x3 128->128 at 8, 256->256 at 4 and 512->512 at 2 are rn50's rows above.
};

std::vector<float> random_vec(size_t n, uint64_t seed) {
  Generator g(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(g.uniform(-1, 1));
  return v;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double seconds(const std::function<void()>& fn) {
  const auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One repetition of contender a against b: calls alternate a, b, a, b, ... for at least
// ~target seconds (at least three pairs). Returns a's and b's median call time and the
// median of the per-pair ratios a/b. Pairs and medians, because on a shared 2-core machine
// the load changes from one moment to the next, and a call whose thread was descheduled at
// a barrier costs a whole time slice, which says nothing about the kernel.
struct Paired {
  double a, b, ratio;
};
Paired time_pair(const std::function<void()>& fa, const std::function<void()>& fb, double target) {
  std::vector<double> ta, tb, r;
  double total = 0;
  while (r.size() < 3 || total < target) {
    ta.push_back(seconds(fa));
    tb.push_back(seconds(fb));
    r.push_back(ta.back() / tb.back());
    total += ta.back() + tb.back();
  }
  return {median(ta), median(tb), median(r)};
}

const char* lowering_name(const cpu::ConvPlan& p) {
  return p.lowering == cpu::ConvLowering::Batched ? "batched" : "per-sample";
}

}  // namespace

int main(int argc, char** argv) {
  int threads = get_num_threads(), reps = 7;
  int64_t batch = 32;
  bool lowerings = false, implicit = false;
  std::string filter;
  double target = 0.02;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("usage: bench_conv [--threads T] [--reps R] [--batch N] [--filter TEXT] [--lowerings] [--implicit]\n");
      return 0;
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::atoll(argv[++i]);
    } else if (a == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else if (a == "--lowerings") {
      lowerings = true;
    } else if (a == "--implicit") {
      implicit = true;
    } else {
      std::fprintf(stderr, "bench_conv: unknown or incomplete flag '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  ThreadCountGuard tc(threads);
  std::printf("bench_conv: %d threads, batch %lld, %d reps (old = conv2d.cpp at 29c2680)\n\n", threads,
              (long long)batch, reps);
  std::printf("| layer | pass | P | plan | old ms | new ms | new GFLOP/s | old/new |%s%s\n",
              lowerings ? " per-sample/new | batched/new |" : "", implicit ? " colmat ms | colmat/new |" : "");
  std::printf("|---|---|---:|---|---:|---:|---:|---:|%s%s\n", lowerings ? "---:|---:|" : "", implicit ? "---:|---:|" : "");

  struct Row {
    std::string group, pass;
    double ratio;
  };
  std::vector<Row> rows;
  for (const Layer& L : kLayers) {
    const std::string label = std::string(L.net) + " " + L.group + " " + L.name;
    if (!filter.empty() && label.find(filter) == std::string::npos) continue;
    const ConvGeom g = cpu::make_conv_geom(batch, L.C, L.H, L.H, L.O, L.k, L.k, L.s, L.s, L.p, L.p);
    const int64_t P = g.col_cols(), K = g.col_rows();
    const auto x = random_vec(g.N * g.C * g.H * g.W, 1), w = random_vec(g.O * K, 2);
    const auto dy = random_vec(g.N * g.O * P, 3);
    std::vector<float> y(g.N * g.O * P), dx(x.size()), dw(w.size()), db(g.O);
    const double flops = 2.0 * double(g.N) * double(g.O) * double(K) * double(P);
    for (cpu::ConvPass pass : {cpu::ConvPass::Forward, cpu::ConvPass::BackwardInput, cpu::ConvPass::BackwardWeight}) {
      if (implicit && pass != cpu::ConvPass::Forward) continue;  // --implicit: the forward only
      const cpu::ConvPlan plan = cpu::plan_conv(g, pass, sizeof(float));
      const cpu::ConvPlan forced[2] = {{cpu::ConvLowering::PerSample, 1},
                                       {cpu::ConvLowering::Batched, cpu::conv_chunk(g, sizeof(float))}};
      auto run_new = [&](const cpu::ConvPlan& p) {
        switch (pass) {
          case cpu::ConvPass::Forward: return cpu::conv2d_forward_planned(g, p, x.data(), w.data(), (float*)nullptr, y.data());
          case cpu::ConvPass::BackwardInput: return cpu::conv2d_backward_input_planned(g, p, dy.data(), w.data(), dx.data());
          case cpu::ConvPass::BackwardWeight:
            return cpu::conv2d_backward_weight_planned(g, p, dy.data(), x.data(), dw.data(), db.data());
        }
      };
      auto run_old = [&] {
        switch (pass) {
          case cpu::ConvPass::Forward: return old::forward(g, x.data(), w.data(), y.data());
          case cpu::ConvPass::BackwardInput: return old::backward_input(g, dy.data(), w.data(), dx.data());
          case cpu::ConvPass::BackwardWeight: return old::backward_weight(g, dy.data(), x.data(), dw.data(), db.data());
        }
      };
      cpu::ConvPlan colmat = plan;
      colmat.implicit = false;
      const bool vs_colmat = implicit && plan.implicit;
      std::vector<double> t_old, t_new, r_old, r_ps, r_b, r_col, t_col;
      run_old();  // warm-up: workspaces, caches, thread pool
      run_new(plan);
      for (int r = 0; r < reps; ++r) {
        auto run_plan = [&] { run_new(plan); };
        const Paired on = time_pair(run_old, run_plan, target);
        t_old.push_back(on.a);
        t_new.push_back(on.b);
        r_old.push_back(on.ratio);
        if (lowerings) {
          r_ps.push_back(time_pair([&] { run_new(forced[0]); }, run_plan, target).ratio);
          r_b.push_back(time_pair([&] { run_new(forced[1]); }, run_plan, target).ratio);
        }
        if (vs_colmat) {
          const Paired c = time_pair([&] { run_new(colmat); }, run_plan, target);
          t_col.push_back(c.a);
          r_col.push_back(c.ratio);
        }
      }
      const char* pass_name = pass == cpu::ConvPass::Forward ? "fwd" : pass == cpu::ConvPass::BackwardInput ? "dx" : "dw";
      char plan_text[48];
      std::snprintf(plan_text, sizeof plan_text, "%s x%lld%s", lowering_name(plan), (long long)plan.chunk,
                    plan.implicit ? " implicit" : "");
      std::printf("| %s | %s | %lld | %s | %.3f | %.3f | %.1f | %.2f |", label.c_str(), pass_name, (long long)P,
                  plan_text, 1e3 * median(t_old), 1e3 * median(t_new), flops / median(t_new) * 1e-9, median(r_old));
      if (lowerings) std::printf(" %.2f | %.2f |", median(r_ps), median(r_b));
      if (implicit) vs_colmat ? std::printf(" %.3f | %.2f |", 1e3 * median(t_col), median(r_col)) : std::printf(" | |");
      std::printf("\n");
      std::fflush(stdout);
      rows.push_back({L.group, pass_name, median(r_old)});
    }
  }
  std::printf("\nmedian old/new per layer group and pass:\n");
  for (const char* group : {"stem", "l1", "l2", "l3", "l4"})
    for (const char* pass : {"fwd", "dx", "dw"}) {
      std::vector<double> v;
      for (const Row& r : rows)
        if (r.group == group && r.pass == pass) v.push_back(r.ratio);
      if (!v.empty()) std::printf("  %-4s %-3s %.2fx (%zu layers)\n", group, pass, median(v), v.size());
    }
  std::vector<double> all;
  for (const Row& r : rows) all.push_back(r.ratio);
  std::printf("all: median old/new %.2fx over %zu layer-passes\n", median(all), all.size());
  return 0;
}
