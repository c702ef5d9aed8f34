// train_resnet: trains a ResNet on a folder of class folders (EuroSAT by default), on the CPU
// or (--device cuda) on an NVIDIA GPU.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
//   ./build/apps/train_resnet --arch resnet18 --epochs 2                  # smoke run (sample if no EuroSAT)
//   ./build/apps/train_resnet --arch resnet50 --epochs 20 --out runs/r50  # full EuroSAT, from scratch
//   ./build/apps/train_resnet --weights resnet50.safetensors --freeze-epochs 1 --epochs 6 --lr 1e-3
//   ./build/apps/train_resnet --out runs/r50 --resume                     # continue after a kill
//   ./build/apps/train_resnet --arch resnet18 --lr-find --out runs/lrf    # learning-rate range test
//   ./build/apps/train_resnet --device cuda --arch resnet50 --epochs 20    # on the GPU
//   ./build/apps/classify --model runs/r50/best.safetensors some.jpg      # use the result
//
// This file is only the command line: the run itself is train_model() in train/trainer.h.
// Exit codes: 0 done (or stopped by --stop-after-batches), 1 runtime error, 2 command-line
// error, 3 training diverged (non-finite loss), 130 interrupted (Ctrl-C; resumable).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <string>

#include "models/resnet.h"
#include "tensor/error.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace minidl;
namespace fs = std::filesystem;

namespace {

const char* kFooter = R"(Data (--data): one sub-folder per class, classes sorted by name. Default, first found:
  $EUROSAT_DIR; ../shared/data/EuroSAT_RGB next to the repository (the repository is found
  from where this program was compiled, else the current folder); the shipped sample
  datasets/eurosat_sample (10 classes x 30 images). The run prints which one it uses.
  Non-image files are listed and skipped; undecodable images are listed and left out; an
  empty class folder or a missing folder is an error.

Split: stratified 60/20/20 with --split-seed (not --seed, so changing the training seed keeps
  the same test images), saved as OUT/split.json; --split-file reuses one.

Fine-tuning (--weights, converted with scripts/convert_torchvision.py): the classifier head is
  replaced for the dataset's classes. --freeze-epochs N trains only the head for N epochs,
  then unfreezes the whole network, the backbone at lr * --backbone-lr-mult (fastai's
  fine_tune). Each phase gets its own --schedule. Without --weights the model trains from
  scratch.

Outputs in OUT (default runs/<arch>-<date>-<time>): metrics.jsonl and metrics.csv (one line per
  epoch), last.safetensors (weights, optimizer state, position, RNG, config: for --resume),
  best.safetensors (best validation accuracy, with class names and preprocessing, ready for
  classify), split.json, and after training: the test evaluation of the best model
  (printed; confusion.csv, top_losses.csv, results.json) and report.html (self-contained).

Resume: --out OUT --resume continues from OUT/last.safetensors; flags left out are taken from
  the checkpoint, and a flag that changes the result (arch, batch size, seed, lr, ...) is
  refused. With the same --threads the result is bit-identical to an uninterrupted run.
  --checkpoint-every N also checkpoints mid-epoch; --stop-after-batches N stops as if killed.
  Ctrl-C saves last.safetensors after the current batch and exits (a second Ctrl-C quits now).

Device: --device cuda keeps the model, the optimizer state and each batch on the GPU (batches
  go up through a pinned staging buffer); decoding and augmentation stay on CPU threads, and
  checkpoints are the same files as a CPU run's (either device resumes the other's, matching
  it to rounding). Running out of GPU memory is an error that suggests a smaller --batch-size.

Exit codes: 0 done, 1 runtime error, 2 command-line error, 3 non-finite loss (training
  stopped; the last good checkpoint is kept), 130 interrupted by Ctrl-C (resumable).)";

// Ctrl-C asks the trainer to checkpoint after the current batch and stop; a second Ctrl-C
// quits at once (the last checkpoint stays).
std::atomic<bool> g_interrupt{false};
extern "C" void on_sigint(int) {
  if (g_interrupt.exchange(true)) std::_Exit(130);
  const char msg[] = "\ninterrupt: finishing this batch, then saving last.safetensors (Ctrl-C again to quit now)\n";
  [[maybe_unused]] ssize_t n = write(2, msg, sizeof msg - 1);
}

// The repository root: where this file was compiled from, when that still exists.
fs::path repository_root() {
  const fs::path here = fs::path(__FILE__).parent_path().parent_path();
  std::error_code ec;
  if (!here.empty() && fs::exists(here / "datasets", ec)) return here;
  return fs::current_path();
}

// --data's default, and where it came from.
std::pair<std::string, std::string> default_data_dir() {
  if (const char* env = std::getenv("EUROSAT_DIR"); env && *env) return {env, "$EUROSAT_DIR"};
  const fs::path root = repository_root();
  std::error_code ec;
  const fs::path full = (root / ".." / "shared" / "data" / "EuroSAT_RGB").lexically_normal();
  if (fs::is_directory(full, ec)) return {full.string(), "the full EuroSAT next to the repository"};
  return {(root / "datasets" / "eurosat_sample").string(),
          "the shipped sample (10 classes x 30 images; set --data or $EUROSAT_DIR for the full data)"};
}

std::string timestamp() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

std::string absolute(const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); }

// "--batch-size" -> "batch_size": the config's JSON key for a flag.
std::string key_of(const CLI::Option* opt) {
  std::string name = opt->get_lnames().empty() ? opt->get_name() : opt->get_lnames().front();
  for (char& ch : name)
    if (ch == '-') ch = '_';
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  TrainConfig c;
  bool no_augment = false, no_progress = false;
  CLI::App app{"Train a ResNet (torchvision's architecture) on an image folder such as EuroSAT, on the CPU or an "
               "NVIDIA GPU."};
  app.footer(kFooter);
  app.get_formatter()->column_width(34);

  app.add_option("--data", c.data, "image folder: one sub-folder per class (default: see below)");
  app.add_option("--arch", c.arch, "architecture")->capture_default_str()->check(CLI::IsMember(resnet_arch_names()));
  app.add_option("--weights", c.weights, "converted ImageNet weights (.safetensors); head replaced")
      ->check(CLI::ExistingFile);
  app.add_option("--epochs", c.epochs, "epochs in total (head-only ones included)")->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "images per batch")->capture_default_str();
  app.add_option("--img-size", c.img_size, "square network input, 32..224")->capture_default_str()
      ->check(CLI::Range(32, 224));
  app.add_option("--lr", c.lr, "peak learning rate (of the head when fine-tuning)")->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "sgd (momentum, L2) or adamw (decoupled decay)")->capture_default_str()
      ->check(CLI::IsMember({"sgd", "adamw"}));
  app.add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--schedule", c.schedule, "onecycle | cosine (warm-up + cosine) | step (/10 every third)")
      ->capture_default_str()->check(CLI::IsMember({"onecycle", "cosine", "step"}));
  app.add_option("--warmup-epochs", c.warmup_epochs, "warm-up length (onecycle: rising part; 0 = 30%)")
      ->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "weight decay on conv/linear kernels (never biases, BN)")
      ->capture_default_str();
  app.add_option("--label-smoothing", c.label_smoothing, "label smoothing of the training loss")->capture_default_str();
  app.add_option("--freeze-epochs", c.freeze_epochs, "train only the head for N epochs first (with --weights)")
      ->capture_default_str();
  app.add_option("--backbone-lr-mult", c.backbone_lr_mult, "backbone lr = lr * this, after unfreezing")
      ->capture_default_str();
  app.add_flag("--no-augment", no_augment, "no flips/rotations/crops/colour jitter on training images");
  app.add_option("--seed", c.seed, "seed of model init, shuffling and augmentation")->capture_default_str();
  app.add_option("--split-seed", c.split_seed, "seed of the train/val/test split")->capture_default_str();
  app.add_option("--split-file", c.split_file, "reuse this split (a split.json of an earlier run)")
      ->check(CLI::ExistingFile);
  app.add_option("--threads", c.threads, "compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  app.add_option("--workers", c.workers, "data-loader threads")->capture_default_str();
  app.add_option("--out", c.out, "run folder (default: runs/<arch>-<date>-<time>)");
  app.add_flag("--resume", c.resume, "continue the run in --out from its last.safetensors");
  app.add_option("--max-batches", c.max_batches, "smoke runs: at most N batches per epoch (train, val, test)")
      ->capture_default_str();
  app.add_option("--checkpoint-every", c.checkpoint_every, "also write last.safetensors every N batches (0: epochs only)")
      ->capture_default_str();
  app.add_option("--stop-after-batches", c.stop_after_batches, "stop after N batches as if killed (tests resume)")
      ->capture_default_str();
  app.add_option("--top-losses", c.top_losses, "worst test predictions to list and show")->capture_default_str();
  app.add_option("--device", c.device, "cpu, or cuda (the GPU; falls back to the cpu with a message when this build "
                 "or machine has none)")->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--no-progress", no_progress, "no live progress line or decoding bar");
  app.add_flag("--lr-find", c.lr_find, "run the learning-rate range test, print the suggestion, and exit");
  app.add_option("--lr-find-start", c.lr_find_start, "lr finder: first lr")->capture_default_str();
  app.add_option("--lr-find-end", c.lr_find_end, "lr finder: last lr")->capture_default_str();
  app.add_option("--lr-find-iters", c.lr_find_iters, "lr finder: batches in the sweep")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  c.augment = !no_augment;
  c.progress = !no_progress;
  std::cout << std::unitbuf;  // log lines interleave correctly with the progress line on stderr

  try {
    if (c.resume) {
      if (c.out.empty()) throw Error("--resume needs --out: the run folder to continue");
      // Start from the checkpoint's settings and lay the flags given here over them; the
      // trainer then refuses any that would change the result.
      const std::string last = last_checkpoint_path(c.out);
      if (!fs::exists(last)) throw Error("--resume: " + last + " does not exist; there is no run to resume in " + c.out);
      const CheckpointInfo saved = read_checkpoint_info(last);
      nlohmann::json merged = config_to_json(saved.config);
      const nlohmann::json given = config_to_json(c);
      for (const CLI::Option* opt : app.get_options()) {
        if (opt->count() == 0) continue;
        const std::string key = key_of(opt);
        if (key == "no_augment") merged["augment"] = given["augment"];
        else if (key == "no_progress") merged["progress"] = given["progress"];
        else if (given.contains(key)) merged[key] = given[key];
      }
      merged["progress"] = c.progress;
      // A test's kill switch and the lr finder apply to this invocation only, never inherited.
      merged["stop_after_batches"] = c.stop_after_batches;
      merged["lr_find"] = c.lr_find;
      const std::string out = c.out;
      c = config_from_json(merged);
      c.out = out;
      c.resume = true;
      c.data = absolute(c.data);
      c.weights = absolute(c.weights);
    } else {
      if (c.data.empty()) {
        const auto [dir, why] = default_data_dir();
        c.data = dir;
        std::cout << "data: using " << dir << " (" << why << ")\n";
      } else {
        std::cout << "data: using " << c.data << " (--data)\n";
      }
      c.data = absolute(c.data);
      c.weights = absolute(c.weights);
      c.split_file = absolute(c.split_file);
      if (c.out.empty()) c.out = (fs::path("runs") / (c.arch + "-" + timestamp())).string();
    }
    std::cout << "out: " << c.out << "\n";
    if (c.lr_find) {
      run_lr_finder(c, std::cout);
      return 0;
    }
    std::signal(SIGINT, on_sigint);
    const TrainOutcome r = train_model(c, std::cout, &g_interrupt);
    switch (r.status) {
      case TrainOutcome::Status::Completed:
        std::cout << "done: test accuracy " << 100 * r.test_accuracy << "% (" << r.test_images
                  << " images); best model " << best_checkpoint_path(c.out) << "\n";
        return 0;
      case TrainOutcome::Status::Stopped:
        std::cout << r.message << "\n";
        return g_interrupt ? 130 : 0;
      case TrainOutcome::Status::Diverged:
        std::cerr << "error: " << r.message << "\n";
        return 3;
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
