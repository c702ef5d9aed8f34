// The driver of bench_kernels --device cuda: flags, the device line, the timing loop, the
// table, the per-step totals and the JSON. The cases are in cases_*.cpp; what each column
// means is in the comment at the top of bench/bench_kernels.cpp.
#include "bench/gpu/kernels_cuda.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "bench/gpu/cases.h"
#include "kernels/cuda/runtime.h"
#include "models/resnet.h"
#include "tensor/device.h"
#include "tensor/random.h"

namespace bench::gpu {

namespace {

struct Settings {
  int reps = 10, warmup = 3;
  double sample_ms = 2.0;  // back-to-back calls per sample: about this long
  bool check = true, list = false;
  std::string filter, json;
};

Settings parse(int argc, char** argv) {
  Settings st;
  bench::Flags f(argc, argv, "bench_kernels --device cuda");
  while (f.next()) {
    if (f.is("--help") || f.is("-h")) {
      std::printf(
          "usage: bench_kernels --device cuda [--filter TEXT] [--json FILE] [--reps R] [--warmup W] [--quick]\n"
          "                     [--no-check] [--list]\n"
          "On the GPU: our tiled GEMM vs cuBLAS, our im2col conv vs cuDNN on every ResNet50 conv shape at 224x224\n"
          "batch 64 and 64x64 batch 256 (fwd, dx, dw), and the memory-bound kernels as %% of the measured\n"
          "device-to-device copy bandwidth. --list prints the case names (no GPU needed). The comment at the top of\n"
          "bench/bench_kernels.cpp explains every column.\n");
      std::exit(0);
    } else if (f.is("--device")) {
      if (f.value() != "cuda") f.fail("--device must be cuda here");
    } else if (f.is("--filter"))
      st.filter = f.value();
    else if (f.is("--json"))
      st.json = f.value();
    else if (f.is("--reps"))
      st.reps = f.int_value(1);
    else if (f.is("--warmup"))
      st.warmup = f.int_value(1);
    else if (f.is("--quick"))
      st.reps = 3, st.warmup = 1, st.sample_ms = 0.5;
    else if (f.is("--no-check"))
      st.check = false;
    else if (f.is("--list"))
      st.list = true;
    else
      f.unknown();  // the CPU-only flags (--threads, --openblas-core, ...) too
  }
  return st;
}

std::vector<Spec> make_specs() {
  minidl::Generator gen(7);
  const auto net = minidl::make_resnet("resnet50", 10, gen);
  const RaceSize big{224, 64}, small{64, 256};
  const ResNetShapes r_big = trace_resnet(*net, big.img), r_small = trace_resnet(*net, small.img);
  std::vector<Spec> specs = gemm_specs(r_small, small.batch);
  const auto append = [&](std::vector<Spec> more) {
    for (Spec& s : more) specs.push_back(std::move(s));
  };
  for (const RaceSize& size : {big, small}) append(conv_specs(size.img == big.img ? r_big : r_small, size));
  for (const RaceSize& size : {big, small}) append(memory_specs(size.img == big.img ? r_big : r_small, size));
  std::vector<int64_t> numels;
  for (const minidl::Tensor& p : net->parameters()) numels.push_back(p.numel());
  append(adamw_specs(numels));
  return specs;
}

std::string fmt(const char* f, double v, bool have = true) {
  if (!have) return "-";
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// One case's measurements.
struct Row {
  double ours_ms = 0, peer_ms = 0, speed = 0, err = -1;  // speed: median of peer time / our time
  bool has_peer = false;
};

Row measure(const Case& k, const Settings& st) {
  Row row;
  row.has_peer = bool(k.peer);
  const int64_t n_ours = calibrate(k.ours, st.warmup, st.sample_ms);
  const int64_t n_peer = row.has_peer ? calibrate(k.peer, st.warmup, st.sample_ms) : 0;
  std::vector<double> ours, peer, ratio;
  for (int r = 0; r < st.reps; ++r) {  // alternate, so clock and thermal drift land on both alike
    ours.push_back(ms_per_call(k.ours, n_ours));
    if (row.has_peer) peer.push_back(ms_per_call(k.peer, n_peer)), ratio.push_back(peer.back() / ours.back());
  }
  row.ours_ms = median_of(ours), row.peer_ms = median_of(peer), row.speed = median_of(ratio);
  if (st.check && k.check) row.err = k.check();
  return row;
}

// Everything the run has measured: the JSON rows, the per-group step totals, the file.
class Report {
 public:
  Report(const Settings& st, const DeviceInfo& dev, double copy_gbs) : st_(st), dev_(dev), copy_gbs_(copy_gbs) {}

  // Prints the case's row (and a mark when it disagrees); returns whether it agrees.
  bool add(const Spec& spec, const Case& k, const Row& row) {
    const bool flops = k.flop > 0;
    const double work = flops ? k.flop / 1e12 : k.bytes / 1e9;  // TFLOP or GB per call
    const double rate = work / (row.ours_ms * 1e-3), peer_rate = row.has_peer ? work / (row.peer_ms * 1e-3) : 0;
    const double pct = flops ? -1 : 100 * rate / copy_gbs_;
    const std::string label = spec.name + (spec.count > 1 ? " x" + std::to_string(spec.count) : "");
    std::printf("%-66s %9.3f %9.2f %6s %9s %9s %6s %8s %s\n", label.c_str(), row.ours_ms, rate,
                fmt("%.0f%%", pct, pct >= 0).c_str(), fmt("%.3f", row.peer_ms, row.has_peer).c_str(),
                fmt("%.2f", peer_rate, row.has_peer).c_str(), fmt("%.2f", row.speed, row.has_peer).c_str(),
                fmt("%.1e", row.err, row.err >= 0).c_str(), flops ? "TFLOP/s" : "GB/s");
    // A wrong result must not pass as a fast one; an infinite (NaN) error fails too.
    const bool ok = row.err < 0 || row.err <= k.tolerance;
    if (!ok) std::printf("  ^ ours disagrees (tolerance %.0e)\n", k.tolerance);
    std::fflush(stdout);
    if (spec.in_step) {
      if (!totals_.count(spec.group)) order_.push_back(spec.group);
      Total& t = totals_[spec.group];
      t.ours += spec.count * row.ours_ms, t.peer += spec.count * row.peer_ms, t.peer_name = k.peer_name;
    }
    const auto opt = [](bool have, double v) { return have ? nlohmann::json(v) : nlohmann::json(nullptr); };
    rows_.push_back({{"case", spec.name},
                     {"group", spec.group},
                     {"count", spec.count},
                     {"unit", flops ? "TFLOP/s" : "GB/s"},
                     {"ours_ms", row.ours_ms},
                     {"ours_rate", rate},
                     {"pct_copy_bandwidth", opt(!flops, pct)},
                     {"peer", k.peer_name},
                     {"peer_ms", opt(row.has_peer, row.peer_ms)},
                     {"peer_rate", opt(row.has_peer, peer_rate)},
                     {"speed_vs_peer", opt(row.has_peer, row.speed)},
                     {"err", opt(row.err >= 0, row.err)},
                     {"tolerance", k.tolerance},
                     {"ok", ok}});
    return ok;
  }

  void add_failure(const Spec& spec, const std::string& what) {
    std::printf("%-66s FAILED: %s\n", spec.name.c_str(), what.c_str());
    std::fflush(stdout);
    rows_.push_back({{"case", spec.name}, {"group", spec.group}, {"error", what}, {"ok", false}});
  }

  // Per group of a training step: the count-weighted sum of its rows.
  void print_totals() const {
    for (const std::string& group : order_) {
      const Total& t = totals_.at(group);
      if (t.peer_name.empty())
        std::printf("all layers of one ResNet50 step, %s: ours %.2f ms\n", group.c_str(), t.ours);
      else
        std::printf("all layers of one ResNet50 step, %s: ours %.2f ms, %s %.2f ms (speed %.2f)\n", group.c_str(),
                    t.ours, t.peer_name.c_str(), t.peer, t.peer / t.ours);
    }
  }

  // Rewritten after every row ("complete": false until the end), so a run cut short by a
  // time limit still leaves its rows.
  bool write(bool complete) const {
    if (st_.json.empty()) return true;
    nlohmann::json totals = nlohmann::json::object();
    for (const auto& [group, t] : totals_)
      totals[group] = {{"ours_ms", t.ours}, {"peer", t.peer_name}, {"peer_ms", t.peer}};
    const nlohmann::json out = {
        {"device", "cuda"},
        {"gpu", dev_.name},
        {"compute_capability", std::to_string(dev_.cc_major) + "." + std::to_string(dev_.cc_minor)},
        {"sms", dev_.sms},
        {"memory_gib", dev_.memory_gib},
        {"copy_gbs", copy_gbs_},
        {"reps", st_.reps},
        {"warmup", st_.warmup},
        {"filter", st_.filter},
        {"complete", complete},
        {"rows", rows_},
        {"step_totals", totals}};
    std::ofstream f(st_.json);
    if (f << out.dump(2) << "\n") return true;
    std::fprintf(stderr, "bench_kernels: cannot write --json file '%s'\n", st_.json.c_str());
    return false;
  }

 private:
  struct Total {
    double ours = 0, peer = 0;
    std::string peer_name;
  };
  const Settings& st_;
  DeviceInfo dev_;
  double copy_gbs_;
  nlohmann::json rows_ = nlohmann::json::array();
  std::map<std::string, Total> totals_;
  std::vector<std::string> order_;
};

// The line above a run of rows saying what they compare.
void print_section(const Case& k, double copy_gbs) {
  if (k.flop > 0)
    std::printf("-- ours vs %s, float32 (no TF32); rate in TFLOP/s; speed = %s time / our time\n", k.peer_name.c_str(),
                k.peer_name.c_str());
  else
    std::printf(
        "-- memory-bound; rate in GB/s of compulsory traffic, %%copy of the %.0f GB/s copy; err vs the CPU "
        "kernels\n",
        copy_gbs);
}

}  // namespace

int run_kernels_cuda(int argc, char** argv) {
  const Settings st = parse(argc, argv);
  if (st.list) {  // the cases --filter selects, without touching the GPU
    int n = 0;
    for (const Spec& s : make_specs())
      if (s.name.find(st.filter) != std::string::npos)
        ++n, std::printf("%s%s\n", s.name.c_str(), s.count > 1 ? (" x" + std::to_string(s.count)).c_str() : "");
    std::printf("%d case(s)\n", n);
    return 0;
  }
  if (!minidl::cuda_available()) {
    const std::string why = minidl::cuda_status();
    std::printf("bench_kernels --device cuda: skipped: %s\n", why.c_str());
    if (!st.json.empty()) std::ofstream(st.json) << nlohmann::json{{"skipped", why}}.dump(2) << "\n";
    return 0;
  }
  const std::vector<Spec> specs = make_specs();
  const auto selected = [&](const Spec& s) { return s.name.find(st.filter) != std::string::npos; };
  if (std::none_of(specs.begin(), specs.end(), selected)) {
    std::fprintf(stderr,
                 "bench_kernels: no case name contains --filter '%s' (e.g. gemm, conv fwd @224, bn bwd, adamw)\n",
                 st.filter.c_str());
    return 2;
  }
  const DeviceInfo dev = device_info();
  const double copy_gbs = measure_copy_gbs(size_t(1) << 30, st.reps);
  std::printf(
      "bench_kernels --device cuda: %s (sm_%d%d, %d SMs, %.1f GiB, L2 %.0f MiB); device-to-device copy "
      "%.1f GB/s (1 GiB, read + write counted); median of %d, %d warm-up call(s)\n",
      dev.name.c_str(), dev.cc_major, dev.cc_minor, dev.sms, dev.memory_gib, dev.l2_mib, copy_gbs, st.reps, st.warmup);
  std::printf("%-66s %9s %9s %6s %9s %9s %6s %8s\n", "case", "ours ms", "rate", "%copy", "peer ms", "peer rate",
              "speed", "err");
  Report report(st, dev, copy_gbs);
  bool all_ok = true;
  std::string section;
  for (const Spec& spec : specs) {
    if (!selected(spec)) continue;
    try {
      const Case k = spec.make();
      const std::string kind = k.flop > 0 ? k.peer_name : "bytes";
      if (kind != section) section = kind, print_section(k, copy_gbs);
      all_ok &= report.add(spec, k, measure(k, st));
    } catch (const std::exception& e) {
      all_ok = false;
      report.add_failure(spec, e.what());
    }
    if (!report.write(false)) return 1;
    try {
      minidl::cuda::empty_cache();       // each case's buffers go back to the driver: no growth over ~300 shapes
    } catch (const std::exception& e) {  // a kernel fault leaves the context unusable: the rest would fail alike
      std::printf("stopping: the GPU context is unusable after the last case (%s)\n", e.what());
      all_ok = false;
      break;
    }
  }
  report.print_totals();
  if (!report.write(true)) return 1;
  if (!all_ok) std::printf("WARNING: some of our results disagree or failed (see the rows marked ^ or FAILED)\n");
  return all_ok ? 0 : 1;
}

}  // namespace bench::gpu
