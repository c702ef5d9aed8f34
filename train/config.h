// TrainConfig: every setting of a training run, in one struct that the command line fills,
// the trainer reads, and the checkpoint stores (as JSON in its metadata), so that --resume
// can tell whether the run it continues is the run it was started as.
//
// The JSON keys are the command-line flag names with '-' written '_' ("batch_size" for
// --batch-size), so an app can overlay the flags a user typed onto a saved config by name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace minidl {

struct TrainConfig {
  // ---- data
  std::string data;              // image-folder root (one sub-folder per class)
  std::string split_file;        // reuse this split; empty: make one (split_seed) and write OUT/split.json
  uint64_t split_seed = 0;       // the split's own seed: changing --seed keeps the same test images
  int img_size = 64;             // square network input, 32..224
  bool augment = true;           // flips, 90-degree turns, resized crop, colour jitter on training images
  int workers = 2;               // loader threads
  // ---- model
  std::string arch = "resnet50";
  std::string weights;           // converted ImageNet weights (head replaced); empty: from scratch
  // ---- optimisation
  int epochs = 10;
  int64_t batch_size = 32;
  double lr = 1e-3;              // the head's (peak) learning rate
  std::string optimizer = "adamw";   // sgd | adamw
  double momentum = 0.9;         // sgd only
  std::string schedule = "onecycle"; // onecycle | cosine | step
  double warmup_epochs = 0;      // cosine: linear warm-up length; onecycle: its rising phase (0: 30%)
  double weight_decay = 0.05;    // on conv/linear kernels only, never on biases or BN parameters
  double label_smoothing = 0.1;
  int freeze_epochs = 0;         // head-only epochs first (needs --weights to make sense)
  double backbone_lr_mult = 0.1; // after unfreezing, the backbone learns at lr * this
  uint64_t seed = 0;             // model init, shuffling, augmentation
  // ---- machinery (these may change on --resume without breaking exactness, except threads
  //      and device, which change the rounding)
  int threads = 0;               // 0: OpenMP's default
  std::string out;               // run folder
  bool resume = false;
  int64_t max_batches = 0;       // >0: cap batches per epoch (train, val and test) for smoke runs
  int64_t checkpoint_every = 0;  // >0: also write last.safetensors every N training batches
  int64_t stop_after_batches = 0;  // >0: stop (as if killed) after N training batches of this process
  std::string device = "cpu";    // cpu | cuda; the trainer records the one it actually ran on
  int top_losses = 16;           // worst test predictions listed and shown in the report
  bool progress = true;          // live progress line and cache progress bar
  // ---- learning-rate finder
  bool lr_find = false;
  double lr_find_start = 1e-7, lr_find_end = 10.0;
  int lr_find_iters = 100;
};

nlohmann::json config_to_json(const TrainConfig& c);
// Keys missing from `j` keep the defaults; an unknown key or a value of the wrong type is an
// error naming the key (a config from a newer build should not be half understood).
TrainConfig config_from_json(const nlohmann::json& j);

// Checks ranges and names (arch, optimizer, schedule, img_size 32..224, ...). The message
// names the flag.
void validate_config(const TrainConfig& c);

// The settings that, if changed, make a resumed run differ from an uninterrupted one:
// one line per differing setting, "batch_size: checkpoint 32, now 16". Empty when the run
// may continue. `threads` and `device` are not listed (they are warnings: results then match
// only to rounding), nor are out, resume, progress, workers, checkpoint_every, stop_after_batches,
// top_losses or the lr-finder settings.
std::vector<std::string> resume_conflicts(const TrainConfig& saved, const TrainConfig& now);

}  // namespace minidl
