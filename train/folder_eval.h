// Scoring a saved model on a labelled image folder (one sub-folder per class), or on the
// test part of a split file: what `classify --eval` reports. Uses the classify pipeline for
// decoding and prediction, and the training metrics for the tables.
#pragma once
#include <string>
#include <vector>

#include "datasets/image_folder.h"
#include "models/classifier.h"
#include "train/metrics.h"

namespace minidl {

struct FolderEval {
  ConfusionMatrix confusion{1};
  std::vector<EvalRecord> records;  // one per classified image; index = into folder.samples
  size_t skipped = 0;               // images that could not be decoded
};

// The folder's classes must be the model's, in the same order: with class names in the
// checkpoint (or a classes file) the names must match; without them the counts must, and
// the folder's sorted order is taken as the class index order. Errors list the difference.
void check_folder_classes(const Classifier& classifier, const ImageFolder& folder);

// Classifies folder.samples[indices] (all samples when empty) and scores each against its
// folder label. `hooks.on_skip` / `on_batch` are forwarded; on_result is used internally.
FolderEval evaluate_folder(const Classifier& classifier, const ImageFolder& folder, const std::vector<int64_t>& indices,
                           int batch_size, ClassifyHooks hooks = {});

}  // namespace minidl
