// The end of a run: the chosen model on the test split, and every file that reports it:
// the printed tables, OUT/confusion.csv, OUT/top_losses.csv, OUT/results.json and
// OUT/report.html.
#pragma once
#include <iosfwd>
#include <string>

#include "layers/module.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/run_setup.h"

namespace minidl {

struct TestSummary {
  double accuracy = 0, macro_f1 = 0;
  int64_t images = 0;
};

// Evaluates `model` (already holding the weights to report) on data.test and writes the
// files above into config.out. `model_label` says which weights these are ("best epoch 7").
TestSummary evaluate_and_report(Module& model, RunData& data, const TrainConfig& config, const TrainState& state,
                                const std::string& model_label, double wall_seconds, std::ostream& log);

}  // namespace minidl
