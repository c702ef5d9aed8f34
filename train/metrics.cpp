#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "models/classifier.h"  // csv_field
#include "tensor/error.h"
#include "train/text_io.h"

namespace minidl {

ConfusionMatrix::ConfusionMatrix(int64_t num_classes) : k_(num_classes) {
  MINIDL_CHECK(num_classes > 0, "ConfusionMatrix: num_classes must be > 0, got ", num_classes);
  counts_.assign(size_t(k_ * k_), 0);
}

void ConfusionMatrix::add(int64_t truth, int64_t predicted) {
  MINIDL_CHECK(truth >= 0 && truth < k_ && predicted >= 0 && predicted < k_, "ConfusionMatrix::add: classes (",
               truth, ", ", predicted, ") outside [0, ", k_, ")");
  ++counts_[size_t(truth * k_ + predicted)];
  ++total_;
}

int64_t ConfusionMatrix::correct() const {
  int64_t n = 0;
  for (int64_t k = 0; k < k_; ++k) n += at(k, k);
  return n;
}

double ConfusionMatrix::accuracy() const { return total_ ? double(correct()) / double(total_) : 0.0; }

ClassificationReport classification_report(const ConfusionMatrix& cm) {
  const int64_t k = cm.num_classes();
  ClassificationReport r;
  r.per_class.resize(size_t(k));
  for (int64_t c = 0; c < k; ++c) {
    int64_t row = 0, col = 0;
    for (int64_t j = 0; j < k; ++j) {
      row += cm.at(c, j);
      col += cm.at(j, c);
    }
    const double tp = double(cm.at(c, c));
    ClassScores& s = r.per_class[size_t(c)];
    s.support = row;
    s.precision = col ? tp / double(col) : 0.0;
    s.recall = row ? tp / double(row) : 0.0;
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  }
  const double total = double(cm.total());
  for (const ClassScores& s : r.per_class) {
    r.macro.precision += s.precision / double(k);
    r.macro.recall += s.recall / double(k);
    r.macro.f1 += s.f1 / double(k);
    if (total > 0) {
      const double w = double(s.support) / total;
      r.weighted.precision += w * s.precision;
      r.weighted.recall += w * s.recall;
      r.weighted.f1 += w * s.f1;
    }
  }
  r.macro.support = r.weighted.support = cm.total();
  r.accuracy = cm.accuracy();
  return r;
}

SampleScore score_logits(const float* logits, int64_t num_classes, int64_t label) {
  MINIDL_CHECK(num_classes > 0 && label >= 0 && label < num_classes, "score_logits: label ", label, " outside [0, ",
               num_classes, ")");
  SampleScore s;
  double top = logits[0];
  for (int64_t j = 1; j < num_classes; ++j)
    if (logits[j] > top) {
      top = logits[j];
      s.predicted = j;
    }
  double denom = 0;
  for (int64_t j = 0; j < num_classes; ++j) denom += std::exp(double(logits[j]) - top);
  const double log_denom = std::log(denom);
  s.confidence = 1.0 / denom;  // exp(top - top) / denom
  s.loss = log_denom - (double(logits[label]) - top);
  return s;
}

std::vector<EvalRecord> top_losses(const std::vector<EvalRecord>& records, size_t n, bool mistakes_only) {
  std::vector<EvalRecord> out;
  for (const EvalRecord& r : records)
    if (!mistakes_only || r.score.predicted != r.label) out.push_back(r);
  std::sort(out.begin(), out.end(), [](const EvalRecord& a, const EvalRecord& b) {
    return a.score.loss != b.score.loss ? a.score.loss > b.score.loss : a.index < b.index;
  });
  if (out.size() > n) out.resize(n);
  return out;
}

namespace {

void check_names(const std::vector<std::string>& names, int64_t k, const char* where) {
  MINIDL_CHECK(int64_t(names.size()) == k, where, ": got ", names.size(), " class names for ", k, " classes");
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

std::string format_classification_table(const ClassificationReport& r, const std::vector<std::string>& names) {
  check_names(names, int64_t(r.per_class.size()), "format_classification_table");
  size_t width = 12;
  for (const auto& n : names) width = std::max(width, n.size());
  std::ostringstream os;
  auto row = [&](const std::string& name, const ClassScores& s) {
    os << "  " << name << std::string(width - std::min(width, name.size()), ' ') << fmt("%10.4f", s.precision)
       << fmt("%10.4f", s.recall) << fmt("%10.4f", s.f1) << fmt("%10.0f", double(s.support)) << "\n";
  };
  os << "  " << std::string(width, ' ') << " precision    recall        f1   support\n";
  for (size_t c = 0; c < names.size(); ++c) row(names[c], r.per_class[c]);
  os << "\n";
  row("macro avg", r.macro);
  row("weighted avg", r.weighted);
  os << "  accuracy" << std::string(width - 8, ' ') << fmt("%30.4f", r.accuracy)
     << fmt("%10.0f", double(r.macro.support)) << "\n";
  return os.str();
}

std::string format_confusion_table(const ConfusionMatrix& cm, const std::vector<std::string>& names) {
  const int64_t k = cm.num_classes();
  check_names(names, k, "format_confusion_table");
  int64_t biggest = 1;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) biggest = std::max(biggest, cm.at(i, j));
  const int cell = std::max<int>(4, int(std::to_string(biggest).size()) + 1);
  std::ostringstream os;
  auto cell_text = [&](int64_t v) {
    const std::string digits = std::to_string(v);
    return std::string(size_t(std::max<int>(0, cell - int(digits.size()))), ' ') + digits;
  };
  os << "  true \\ predicted\n      ";
  for (int64_t j = 0; j < k; ++j) os << cell_text(j);
  os << "\n";
  for (int64_t i = 0; i < k; ++i) {
    os << fmt("  %3.0f ", double(i));
    for (int64_t j = 0; j < k; ++j) os << cell_text(cm.at(i, j));
    os << "   " << names[size_t(i)] << "\n";
  }
  return os.str();
}

void write_confusion_csv(const std::string& path, const ConfusionMatrix& cm, const std::vector<std::string>& names) {
  const int64_t k = cm.num_classes();
  check_names(names, k, "write_confusion_csv");
  std::string text = "true\\predicted";
  for (const auto& n : names) (text += ',') += csv_field(n);
  text += "\n";
  for (int64_t i = 0; i < k; ++i) {
    text += csv_field(names[size_t(i)]);
    for (int64_t j = 0; j < k; ++j) (text += ',') += std::to_string(cm.at(i, j));
    text += "\n";
  }
  write_text_atomic(path, text);
}

}  // namespace minidl
