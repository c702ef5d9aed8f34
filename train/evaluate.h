// One pass of a model over a loader in eval mode (batch norm uses its running statistics,
// no graph is recorded), scoring every sample: the basis of validation after each epoch and
// of the final test report.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/loader.h"
#include "layers/module.h"
#include "train/metrics.h"

namespace minidl {

struct EvalResult {
  double loss = 0;      // mean cross-entropy (no label smoothing)
  double accuracy = 0;
  int64_t count = 0;    // samples evaluated
  std::vector<EvalRecord> records;  // one per sample, in loader order
};

// Evaluates `loader`'s epoch 0 (unshuffled loaders give the same order every epoch), at
// most `max_batches` batches when > 0. The model's train/eval mode is restored afterwards.
// Runs on the model's device (Module::device()); the scores are computed on the host.
// A progress line labelled `label` goes to stderr when `progress`.
EvalResult evaluate(Module& model, DataLoader& loader, int64_t num_classes, int64_t max_batches = 0,
                    bool progress = false, const std::string& label = "eval");

// Confusion matrix of a set of records.
ConfusionMatrix confusion_of(const std::vector<EvalRecord>& records, int64_t num_classes);

}  // namespace minidl
