// Classification metrics from predictions: the confusion matrix, per-class precision,
// recall and F1 with macro and weighted averages, per-sample scores from logits, and the
// highest-loss predictions. Pure functions of their inputs, so the unit test can check them
// against numbers worked out by hand.
//
// Conventions (scikit-learn's, with zero_division=0):
//   precision_k = TP_k / (TP_k + FP_k)   (column k of the matrix; 0 when nothing was predicted k)
//   recall_k    = TP_k / (TP_k + FN_k)   (row k; 0 when class k has no samples)
//   f1_k        = 2 p r / (p + r)        (0 when p + r = 0)
//   macro       = plain mean over all classes
//   weighted    = mean weighted by support (row sums); accuracy = trace / total
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minidl {

// Rows are the true class, columns the predicted one.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes);
  void add(int64_t truth, int64_t predicted);  // both in [0, num_classes)
  int64_t at(int64_t truth, int64_t predicted) const { return counts_[size_t(truth * k_ + predicted)]; }
  int64_t num_classes() const { return k_; }
  int64_t total() const { return total_; }
  int64_t correct() const;
  double accuracy() const;  // 0 when empty

 private:
  int64_t k_;
  int64_t total_ = 0;
  std::vector<int64_t> counts_;
};

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct ClassificationReport {
  std::vector<ClassScores> per_class;
  ClassScores macro, weighted;  // support = total samples
  double accuracy = 0;
};

ClassificationReport classification_report(const ConfusionMatrix& cm);

// How one sample was scored: the argmax class (ties: the lower index), its softmax
// probability, and the cross-entropy -log softmax(logits)[label] (no label smoothing),
// computed in double after subtracting the row's maximum.
struct SampleScore {
  int64_t predicted = 0;
  double confidence = 0;
  double loss = 0;
};
SampleScore score_logits(const float* logits, int64_t num_classes, int64_t label);

// One evaluated sample, as the evaluation pass records it.
struct EvalRecord {
  int64_t index = 0;  // into the dataset's sample list
  int64_t label = 0;
  SampleScore score;
};

// The n records with the largest loss, largest first (ties: lower index first). With
// mistakes_only, correctly classified samples are left out.
std::vector<EvalRecord> top_losses(const std::vector<EvalRecord>& records, size_t n, bool mistakes_only = false);

// Plain-text tables for the terminal. Class names must have num_classes entries.
std::string format_classification_table(const ClassificationReport& r, const std::vector<std::string>& names);
// Rows true, columns predicted; columns are numbered and the legend maps numbers to names,
// so ten long class names still fit a terminal.
std::string format_confusion_table(const ConfusionMatrix& cm, const std::vector<std::string>& names);

// CSV: header "true\\predicted,<name 0>,...", then one row per true class. Written through a
// temporary file and renamed.
void write_confusion_csv(const std::string& path, const ConfusionMatrix& cm, const std::vector<std::string>& names);

}  // namespace minidl
