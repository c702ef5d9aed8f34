// bench_weights_io: how long saving and loading a ResNet checkpoint (.safetensors) takes.
// Prints a table and one summary line; no asserts.
//
//   build/bench/bench_weights_io [--arch resnet50] [--reps 5] [--dir /tmp]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "models/resnet.h"
#include "models/state_dict.h"

using namespace minidl;

int main(int argc, char** argv) {
  std::string arch = "resnet50", dir = std::filesystem::temp_directory_path().string();
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("usage: bench_weights_io [--arch resnet50] [--reps 5] [--dir DIR]\n");
      return 0;
    } else if (a == "--arch" && i + 1 < argc) {
      arch = argv[++i];
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "bench_weights_io: unknown or incomplete flag '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (reps < 1) {
    std::fprintf(stderr, "bench_weights_io: --reps must be >= 1\n");
    return 2;
  }
  try {
    Generator gen(0);
    auto model = make_resnet(arch, 1000, gen);
    auto target = make_resnet(arch, 1000, gen);
    const std::string path = dir + "/minidl_bench_" + arch + ".safetensors";
    using clock = std::chrono::steady_clock;
    auto ms = [](clock::time_point a) { return std::chrono::duration<double, std::milli>(clock::now() - a).count(); };
    std::vector<double> save_ms, load_ms;
    for (int r = 0; r < reps; ++r) {
      auto t0 = clock::now();
      save_weights_file(*model, path);
      save_ms.push_back(ms(t0));
      t0 = clock::now();
      load_weights_file(*target, path);  // read + validate + copy into the model
      load_ms.push_back(ms(t0));
    }
    const double mb = double(std::filesystem::file_size(path)) / 1e6;
    std::filesystem::remove(path);
    std::sort(save_ms.begin(), save_ms.end());
    std::sort(load_ms.begin(), load_ms.end());
    const double save_med = save_ms[save_ms.size() / 2], load_med = load_ms[load_ms.size() / 2];
    std::printf("%-10s %10s %12s %12s\n", "arch", "MB", "save ms", "load ms");
    std::printf("%-10s %10.1f %12.1f %12.1f\n", arch.c_str(), mb, save_med, load_med);
    std::printf("summary: %s checkpoint %.1f MB loads in %.0f ms (median of %d, %.0f MB/s)\n", arch.c_str(), mb,
                load_med, reps, mb / load_med * 1e3);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_weights_io: %s\n", e.what());
    return 1;
  }
  return 0;
}
