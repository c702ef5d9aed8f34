// Training checkpoints. Two kinds of file, both safetensors written through a temporary file
// and renamed (save_safetensors does that), so a kill never leaves a torn file behind:
//
// OUT/last.safetensors: everything needed to continue exactly where the run stopped.
//   tensors   "model.<name>"      every parameter and buffer (BN running stats and
//                                  num_batches_tracked included), torchvision names
//             "optimizer.<i>.<k>" Optimizer::state_dict() (momentum buffers, Adam moments)
//   metadata  "minidl_train_state"   JSON of TrainState (position, sums, RNG state)
//             "minidl_train_config"  JSON of the TrainConfig the run was started with
//             plus the model metadata of models/checkpoint_meta.h (arch, classes, ...)
// The learning rate is not stored: the schedule is a pure function of its step, which the
// trainer recomputes from global_step.
//
// OUT/best.safetensors: just the model, under plain torchvision names, with the
// checkpoint_meta keys, so `classify --model best.safetensors` needs no other flag.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "layers/module.h"
#include "layers/optim.h"
#include "tensor/random.h"
#include "train/config.h"

namespace minidl {

struct TrainState {
  int epoch = 0;            // the epoch in progress, from 0 (== epochs when the run is done)
  int64_t batch = 0;        // batches of `epoch` already trained
  int64_t global_step = 0;  // optimizer steps since the start of the run
  double best_val_acc = -1; // -1: no epoch has been validated yet
  int best_epoch = 0;       // 1-based epoch of best.safetensors (0: none)
  // Running sums over the batches of `epoch` done so far, so a resumed epoch reports the
  // same averages as an uninterrupted one.
  double loss_sum = 0;      // sum of batch-mean loss x batch size
  int64_t correct = 0, seen = 0;
  Generator::State rng{};   // the process-wide generator
};

nlohmann::json train_state_to_json(const TrainState& s);
TrainState train_state_from_json(const nlohmann::json& j);

void save_training_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                              const TrainState& state, const TrainConfig& config,
                              const std::map<std::string, std::string>& model_metadata);

// Reads only the config and state (no model needed): what --resume looks at first.
struct CheckpointInfo {
  TrainConfig config;
  TrainState state;
};
CheckpointInfo read_checkpoint_info(const std::string& path);

// Loads weights (strictly) and optimizer state from a file written by
// save_training_checkpoint; returns its config and state. Errors name the file.
CheckpointInfo load_training_checkpoint(const std::string& path, Module& model, Optimizer& optimizer);

// The model alone, torchvision names, with `model_metadata` (checkpoint_meta keys).
void save_model_checkpoint(const std::string& path, const Module& model,
                           const std::map<std::string, std::string>& model_metadata);

}  // namespace minidl
