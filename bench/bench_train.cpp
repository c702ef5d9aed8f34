// bench_train: end-to-end throughput of a minidl ResNet on this CPU or on the GPU — the
// training step the trainer runs (forward, cross-entropy with label smoothing, zero_grad,
// backward, AdamW step) and inference (eval mode, no grad) — on random images of a fixed size.
//
//   build/bench/bench_train [--device cpu|cuda] [--arch resnet50] [--img-size 64] [--batch 32]
//                           [--infer-batch 64] [--threads T] [--warmup W] [--steps S]
//                           [--mode train|infer|both] [--classes 10] [--quick] [--json FILE]
//   e.g. on a GPU, the race sizes of issue 7:
//     build/bench/bench_train --device cuda --img-size 64 --batch 256 --infer-batch 256
//     build/bench/bench_train --device cuda --img-size 224 --batch 64 --infer-batch 64
//
//   --device D         cpu (default) or cuda: the model (Module::to) and the batches live on
//                      the GPU; every step ends with cuda::synchronize() before the clock is
//                      read, and the end reports the allocator's peak device memory
//                      (cuda::memory_stats) instead of the RSS. The convolution is cuDNN's
//                      unless MINIDL_CONV=own. Without a usable GPU: the reason and
//                      "skipped", exit 0; a build without CUDA: an error, exit 2.
//   --arch NAME        resnet18/34/50/101/152 (default resnet50)
//   --img-size N       square input side (default 64, the EuroSAT size)
//   --batch B          training batch (default 32); --infer-batch B: inference batch (64)
//   --threads T        minidl's OpenMP threads (default: OMP_NUM_THREADS or all cores)
//   --warmup W         untimed steps first (default 2): page faults, workspaces, AdamW state
//   --steps S          timed steps per mode (default 10)
//   --mode M           train, infer or both (default both; bench/compare_pytorch.py runs one
//                      mode per process so that the peak RSS belongs to that mode alone)
//   --classes K        fc outputs (default 10, EuroSAT)
//   --quick            --warmup 1 --steps 3
//   --json FILE        also write the results as JSON (what compare_pytorch.py reads)
//
// Reports per mode the median over the timed steps of img/s (batch / step time), the
// GFLOP/s that implies, and at the end the process's peak RSS (getrusage ru_maxrss).
// FLOPs are counted from the model's own conv and linear shapes (bench/resnet_shapes.h:
// 2 per multiply-add; training = forward + dW + dX, no dX for the stem); the counter is
// checked at start-up against torchvision's published cost at 224x224 and the bench refuses
// to run if they disagree. Hyper-parameters follow train_resnet's defaults (AdamW lr 1e-3,
// weight decay 0.05 on conv/linear kernels only, label smoothing 0.1). Never asserts on time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "bench/bench_util.h"
#include "bench/resnet_shapes.h"
#include "layers/adamw.h"
#include "models/resnet.h"
#include "tensor/device.h"
#include "tensor/factory.h"
#include "tensor/parallel.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/conv_select.h"
#include "kernels/cuda/runtime.h"
#endif

using namespace minidl;

namespace {

struct Options {
  std::string arch = "resnet50", mode = "both", json, device = "cpu";
  int img = 64, batch = 32, infer_batch = 64, threads = 0, warmup = 2, steps = 10, classes = 10;
};

Options parse(int argc, char** argv) {
  Options o;
  bool quick = false;
  bench::Flags f(argc, argv, "bench_train");
  while (f.next()) {
    if (f.is("--help") || f.is("-h")) {
      std::printf(
          "usage: bench_train [--device cpu|cuda] [--arch resnet50] [--img-size 64] [--batch 32] [--infer-batch 64]\n"
          "                   [--threads T] [--warmup 2] [--steps 10] [--mode train|infer|both] [--classes 10]\n"
          "                   [--quick] [--json FILE]\n"
          "Training-step and inference throughput (img/s, GFLOP/s, peak RSS or peak device memory) of a ResNet\n"
          "on random images, on the CPU or (--device cuda) the GPU.\n");
      std::exit(0);
    } else if (f.is("--device")) o.device = f.value();
    else if (f.is("--arch")) o.arch = f.value();
    else if (f.is("--img-size")) o.img = f.int_value(8);
    else if (f.is("--batch")) o.batch = f.int_value(1);
    else if (f.is("--infer-batch")) o.infer_batch = f.int_value(1);
    else if (f.is("--threads")) o.threads = f.int_value(1);
    else if (f.is("--warmup")) o.warmup = f.int_value(0);
    else if (f.is("--steps")) o.steps = f.int_value(1);
    else if (f.is("--classes")) o.classes = f.int_value(1);
    else if (f.is("--mode")) o.mode = f.value();
    else if (f.is("--json")) o.json = f.value();
    else if (f.is("--quick")) quick = true;
    else f.unknown();
  }
  if (o.mode != "train" && o.mode != "infer" && o.mode != "both") f.fail("--mode must be train, infer or both");
  if (o.device != "cpu" && o.device != "cuda") f.fail("--device must be cpu or cuda");
  if (quick) o.warmup = 1, o.steps = 3;
  return o;
}

struct ModeResult {
  int batch = 0;
  std::vector<double> step_s;  // timed steps only
  double img_s() const { return double(batch) / bench::median_of(step_s); }
};

// Random images and labels on `dev`, the same every step (the bench measures compute, not
// loading).
std::pair<Tensor, Tensor> make_batch(int batch, int img, int classes, Generator& gen, Device dev) {
  Tensor x = randn({batch, 3, img, img}, DType::Float32, gen);
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (int64_t& l : labels) l = int64_t(gen.randint(uint64_t(classes)));
  Tensor y = from_vector(labels, {batch});
  if (dev == Device::CPU) return {x, y};
  return {x.to(dev), y.to(dev)};
}

// GPU work is queued asynchronously: wait for all of it before the clock is read.
void finish(Device dev) {
#ifdef MINIDL_WITH_CUDA
  if (dev == Device::CUDA) cuda::synchronize();
#else
  (void)dev;
#endif
}

ModeResult run_train(ResNet& net, const Options& o, Generator& gen, Device dev) {
  auto [x, y] = make_batch(o.batch, o.img, o.classes, gen, dev);
  AdamWOptions ao;
  ao.lr = 1e-3;
  AdamW opt(weight_decay_groups(net, 0.05), ao);
  net.train();
  ModeResult r;
  r.batch = o.batch;
  for (int s = 0; s < o.warmup + o.steps; ++s) {
    const auto t0 = bench::Clock::now();
    const Tensor loss = cross_entropy(net.forward(x), y, 0.1);
    const double value = loss.item();  // the trainer reads the loss every step too
    opt.zero_grad();
    loss.backward();
    opt.step();
    finish(dev);
    const double sec = bench::elapsed_s(t0);
    if (!std::isfinite(value)) throw std::runtime_error("bench_train: the loss became " + std::to_string(value));
    if (s >= o.warmup) r.step_s.push_back(sec);
  }
  return r;
}

ModeResult run_infer(ResNet& net, const Options& o, Generator& gen, Device dev) {
  Tensor x = make_batch(o.infer_batch, o.img, o.classes, gen, dev).first;
  net.eval();
  NoGradGuard no_grad;
  ModeResult r;
  r.batch = o.infer_batch;
  for (int s = 0; s < o.warmup + o.steps; ++s) {
    const auto t0 = bench::Clock::now();
    const Tensor logits = net.forward(x);
    finish(dev);
    const double sec = bench::elapsed_s(t0);
    const Tensor host = dev == Device::CPU ? logits : logits.cpu();  // read outside the timed region
    if (!std::isfinite(double(host.data<float>()[0]))) throw std::runtime_error("bench_train: non-finite logits");
    if (s >= o.warmup) r.step_s.push_back(sec);
  }
  return r;
}

nlohmann::json report(const char* mode, const ModeResult& r, double flops_per_img) {
  const double img_s = r.img_s(), gflops = img_s * flops_per_img / 1e9;
  std::vector<double> per_step;
  for (double s : r.step_s) per_step.push_back(double(r.batch) / s);
  const auto [lo, hi] = std::minmax_element(per_step.begin(), per_step.end());
  std::printf("%-6s batch %3d: %8.1f img/s median (%.1f-%.1f over %zu steps), %7.1f ms/step, %6.1f GFLOP/s\n", mode,
              r.batch, img_s, *lo, *hi, per_step.size(), 1e3 * bench::median_of(r.step_s), gflops);
  std::fflush(stdout);
  return {{"batch", r.batch},        {"steps", r.step_s.size()},   {"img_per_s", img_s},
          {"img_per_s_steps", per_step}, {"step_ms", 1e3 * bench::median_of(r.step_s)},
          {"gflops", gflops},        {"gflop_per_img", flops_per_img / 1e9}};
}

// What the header line says about the GPU run: the device and the convolution in use.
std::string cuda_description() {
  std::string d = cuda_status();
#ifdef MINIDL_WITH_CUDA
  d += std::string(", conv ") + cuda::conv_impl_name(cuda::conv_impl_from_env());
#endif
  return d;
}

// The allocator's peak device memory (what the GPU run reports instead of the RSS).
double peak_device_mib() {
#ifdef MINIDL_WITH_CUDA
  return double(cuda::memory_stats().peak_bytes_in_use) / double(1 << 20);
#else
  return 0.0;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const Device dev = o.device == "cuda" ? Device::CUDA : Device::CPU;
  if (dev == Device::CUDA) {
#ifndef MINIDL_WITH_CUDA
    std::fprintf(stderr, "bench_train: --device cuda: this build has no CUDA backend (it was configured with "
                         "-DMINIDL_CUDA=OFF or without nvcc); rebuild with CUDA to measure the GPU\n");
    return 2;
#endif
    if (!cuda_available()) {
      std::printf("bench_train --device cuda: skipped: %s\n", cuda_status().c_str());
      if (!o.json.empty()) std::ofstream(o.json) << nlohmann::json{{"skipped", cuda_status()}}.dump(2) << "\n";
      return 0;
    }
  }
  if (o.threads > 0) set_num_threads(o.threads);
  const int threads = get_num_threads();
  try {
    Generator gen(1234);
    const auto net = make_resnet(o.arch, o.classes, gen);
    if (const std::string bad = bench::check_flop_counter(*net, o.arch); !bad.empty()) {
      std::fprintf(stderr, "bench_train: %s\n", bad.c_str());
      return 1;
    }
    const bench::ResNetShapes shapes = bench::trace_resnet(*net, o.img);
    const double fwd = shapes.forward_flops(), train = shapes.train_flops();
    const std::string where =
        dev == Device::CPU ? std::to_string(threads) + " thread(s)" : "cuda: " + cuda_description();
    std::printf("bench_train: %s, %dx%d, %s, %d warm-up + %d timed steps; %.3f GFLOP/img forward, %.3f "
                "GFLOP/img training step (%zu convs + fc, counted from the model)\n",
                o.arch.c_str(), o.img, o.img, where.c_str(), o.warmup, o.steps, fwd / 1e9, train / 1e9,
                shapes.convs.size());
    std::fflush(stdout);
    nlohmann::json out = {{"framework", "minidl"}, {"arch", o.arch},       {"img_size", o.img},
                          {"threads", threads},    {"warmup", o.warmup},   {"classes", o.classes},
                          {"gflop_per_img_forward", fwd / 1e9}, {"gflop_per_img_train", train / 1e9}};
    if (dev == Device::CUDA) {
      net->to(dev);  // before the optimizer is made, so its state is created on the GPU
      out["device"] = "cuda", out["gpu"] = cuda_description();
    }
    if (o.mode != "infer") out["train"] = report("train", run_train(*net, o, gen, dev), train);
    if (o.mode != "train") out["infer"] = report("infer", run_infer(*net, o, gen, dev), fwd);
    out["peak_rss_mib"] = bench::peak_rss_mib();
    if (dev == Device::CPU) {
      std::printf("peak RSS: %.0f MiB\n", bench::peak_rss_mib());
    } else {
      out["peak_device_mib"] = peak_device_mib();
      std::printf("peak device memory in use: %.0f MiB (minidl's caching allocator)\n", peak_device_mib());
    }
    if (!o.json.empty()) {
      std::ofstream f(o.json);
      if (!(f << out.dump(2) << "\n")) {
        std::fprintf(stderr, "bench_train: cannot write --json file '%s'\n", o.json.c_str());
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
