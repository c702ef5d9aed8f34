// The training run behind apps/train_resnet, as a library call so tests can drive it:
//
//   TrainConfig c;  c.data = "datasets/eurosat_sample";  c.arch = "resnet18";  c.out = "runs/x";
//   TrainOutcome r = train_model(c, std::cout);
//
// What a run does, in order:
//   1. checks the config; with resume, reads OUT/last.safetensors and refuses when a setting
//      that changes the numbers differs (resume_conflicts lists them); without resume,
//      refuses an OUT that already holds a run;
//   2. data: scan, split (OUT/split.json; reread on resume), decode, loaders;
//   3. model and optimizer (train/run_setup.h) on config.device (cuda without a GPU: the
//      cpu, after one message), restored from the checkpoint on resume; each batch goes up
//      to the device through datasets/device_upload.h, and logits and loss come back for
//      the metrics;
//   4. epochs: optional head-only phase (--freeze-epochs), then the full phase, each with its
//      own schedule; per batch forward, label-smoothed cross-entropy, backward, step; a live
//      progress line; per epoch validation, a summary line, OUT/metrics.{jsonl,csv},
//      OUT/best.safetensors when validation accuracy improves, OUT/last.safetensors;
//   5. the best model on the test split: accuracy, per-class scores, confusion matrix
//      (printed, OUT/confusion.csv), top losses (printed, OUT/top_losses.csv),
//      OUT/results.json and OUT/report.html.
//
// Exactness: everything random is a function of the seeds and the (epoch, batch) position,
// and the checkpoint holds the rest of the state, so with the same thread count a resumed
// run ends bit-identical to an uninterrupted one.
#pragma once
#include <atomic>
#include <iosfwd>
#include <string>

#include "train/checkpoint.h"
#include "train/config.h"
#include "train/lr_finder.h"

namespace minidl {

struct TrainOutcome {
  enum class Status {
    Completed,  // all epochs trained and the test evaluation written
    Stopped,    // --stop-after-batches reached, or interrupted (resume with --resume)
    Diverged,   // a non-finite loss; OUT/last.safetensors is the last good state
  };
  Status status = Status::Completed;
  std::string message;    // why it stopped, for Stopped and Diverged
  TrainState state;       // where training stands
  double test_accuracy = -1, test_macro_f1 = -1;
  int64_t test_images = 0;
};

// Runs (or resumes) training as described above. Human-readable progress goes to `log`
// (the live line to stderr when config.progress). Errors throw minidl::Error.
// `interrupt`, when given, is polled after every batch: once true, the run writes
// OUT/last.safetensors at that position and returns Stopped (the app sets it on Ctrl-C).
TrainOutcome train_model(TrainConfig config, std::ostream& log, const std::atomic<bool>* interrupt = nullptr);

// The learning-rate range test on this config's data and model (frozen backbone when
// freeze_epochs > 0, since that is the phase the lr is for): writes OUT/lr_find.csv and
// OUT/lr_find.svg and returns the sweep. The model is discarded afterwards.
LrFindResult run_lr_finder(TrainConfig config, std::ostream& log);

// OUT/last.safetensors and OUT/best.safetensors.
std::string last_checkpoint_path(const std::string& out_dir);
std::string best_checkpoint_path(const std::string& out_dir);

}  // namespace minidl
