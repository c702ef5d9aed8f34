// bench_reference: how fast the plain reference kernels are, as the baseline the fast
// kernels (issue 5) are measured against. Prints a table and one summary line; no asserts.
//
//   build/bench/bench_reference [--threads T] [--reps R]
//
// Shapes: square GEMMs and three ResNet50 conv layers at 64x64 input, batch 8.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "tensor/parallel.h"
#include "tensor/random.h"

using namespace minidl;

namespace {

double median_ms(int reps, const std::function<void()>& fn) {
  fn();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random_vec(size_t n, Generator& g) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(g.normal());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = get_num_threads(), reps = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("usage: bench_reference [--threads T] [--reps R]\n");
      return 0;
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "bench_reference: unknown or incomplete flag '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (threads < 1 || reps < 1) {
    std::fprintf(stderr, "bench_reference: --threads and --reps must be >= 1\n");
    return 2;
  }
  set_num_threads(threads);
  Generator gen(1);
  std::printf("reference kernels, %d thread(s), median of %d\n", threads, reps);
  std::printf("%-34s %10s %10s\n", "kernel", "ms", "GFLOP/s");
  double total_flop = 0, total_ms = 0;

  for (int n : {128, 256, 512}) {
    auto A = random_vec(size_t(n) * n, gen), B = random_vec(size_t(n) * n, gen), C = std::vector<float>(size_t(n) * n);
    double ms = median_ms(reps, [&] {
      cpu::gemm<float>(false, false, n, n, n, 1.f, A.data(), n, B.data(), n, 0.f, C.data(), n);
    });
    double flop = 2.0 * n * n * n;
    total_flop += flop, total_ms += ms;
    std::printf("%-34s %10.3f %10.2f\n", ("sgemm " + std::to_string(n) + "^3").c_str(), ms, flop / ms / 1e6);
  }

  struct ConvCase { const char* name; int64_t C, H, O, K, S, P; };
  const ConvCase convs[] = {{"conv stem 7x7/2 3->64 @64", 3, 64, 64, 7, 2, 3},
                            {"conv 3x3 64->64 @16", 64, 16, 64, 3, 1, 1},
                            {"conv 1x1 256->64 @16", 256, 16, 64, 1, 1, 0}};
  const int64_t N = 8;
  for (const auto& c : convs) {
    auto g = cpu::make_conv_geom(N, c.C, c.H, c.H, c.O, c.K, c.K, c.S, c.S, c.P, c.P);
    auto x = random_vec(size_t(N * c.C * c.H * c.H), gen), w = random_vec(size_t(c.O * c.C * c.K * c.K), gen);
    std::vector<float> y(size_t(N * c.O * g.OH * g.OW));
    double ms = median_ms(reps, [&] { cpu::conv2d_forward<float>(g, x.data(), w.data(), nullptr, y.data()); });
    double flop = 2.0 * N * c.O * g.OH * g.OW * c.C * c.K * c.K;
    total_flop += flop, total_ms += ms;
    std::printf("%-34s %10.3f %10.2f\n", c.name, ms, flop / ms / 1e6);
  }
  std::printf("summary: reference kernels average %.2f GFLOP/s over %zu cases (%d threads)\n",
              total_flop / total_ms / 1e6, std::size(convs) + 3, threads);
  return 0;
}
