#include "train/final_eval.h"

#include <cstdio>
#include <filesystem>
#include <ostream>

#include <nlohmann/json.hpp>

#include "models/classifier.h"  // csv_field
#include "train/epoch_progress.h"
#include "train/evaluate.h"
#include "train/report.h"
#include "train/run_log.h"
#include "train/text_io.h"

namespace minidl {

namespace {

std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * v);
  return buf;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string file_in(const std::string& dir, const char* name) { return (std::filesystem::path(dir) / name).string(); }

}  // namespace

TestSummary evaluate_and_report(Module& model, RunData& data, const TrainConfig& c, const TrainState& st,
                                const std::string& model_label, double wall_seconds, std::ostream& log) {
  const auto& names = data.folder.classes;
  const int64_t k = int64_t(names.size());
  const EvalResult r = evaluate(model, *data.test, k, c.max_batches, c.progress, "  testing");
  const ConfusionMatrix cm = confusion_of(r.records, k);
  const ClassificationReport scores = classification_report(cm);
  const int64_t total = int64_t(data.split.test.size());
  const bool partial = c.max_batches > 0 && r.count < total;
  const std::string partial_note =
      partial ? "evaluated " + std::to_string(r.count) + " of " + std::to_string(total) +
                    " test images (--max-batches): a smoke run, not a result"
              : "";

  log << "\ntest (" << model_label << "): accuracy " << pct(r.accuracy) << " on " << r.count << " images, loss "
      << r.loss << "\n";
  if (partial) log << "  note: " << partial_note << "\n";
  log << "\n" << format_classification_table(scores, names) << "\n" << format_confusion_table(cm, names);
  write_confusion_csv(file_in(c.out, "confusion.csv"), cm, names);

  const auto worst = top_losses(r.records, size_t(c.top_losses));
  std::string csv = "path,true,predicted,confidence,loss\n";
  if (!worst.empty()) log << "\ntop " << worst.size() << " losses (path, true, predicted, confidence):\n";
  for (const EvalRecord& e : worst) {
    const std::string& path = data.folder.samples[size_t(e.index)].path;
    const std::string& truth = names[size_t(e.label)];
    const std::string& pred = names[size_t(e.score.predicted)];
    char line[64];
    std::snprintf(line, sizeof line, "%.4f,%.4f", e.score.confidence, e.score.loss);
    csv += csv_field(path) + "," + csv_field(truth) + "," + csv_field(pred) + "," + line + "\n";
    std::snprintf(line, sizeof line, "%5.1f%%", 100 * e.score.confidence);
    log << "  " << path << "  " << truth << " -> " << pred << "  " << line << "\n";
  }
  write_text_atomic(file_in(c.out, "top_losses.csv"), csv);

  nlohmann::json j;
  j["model"] = model_label;
  j["arch"] = c.arch;
  j["test_images"] = r.count;
  j["test_images_total"] = total;
  j["test_accuracy"] = r.accuracy;
  j["test_loss"] = r.loss;
  j["macro"] = {{"precision", scores.macro.precision}, {"recall", scores.macro.recall}, {"f1", scores.macro.f1}};
  j["weighted"] = {
      {"precision", scores.weighted.precision}, {"recall", scores.weighted.recall}, {"f1", scores.weighted.f1}};
  j["classes"] = names;
  for (size_t i = 0; i < names.size(); ++i) {
    const ClassScores& s = scores.per_class[i];
    j["per_class"].push_back(
        {{"class", names[i]}, {"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}});
    std::vector<int64_t> row;
    for (int64_t jj = 0; jj < k; ++jj) row.push_back(cm.at(int64_t(i), jj));
    j["confusion"].push_back(row);
  }
  j["best_epoch"] = st.best_epoch;
  j["best_val_acc"] = st.best_val_acc;
  j["wall_seconds"] = wall_seconds;
  write_text_atomic(file_in(c.out, "results.json"), j.dump(2) + "\n");

  ReportData rep;
  rep.title = "minidl " + c.arch + " on " + std::filesystem::path(c.data).filename().string();
  rep.notes = partial_note;
  rep.summary = {{"data", c.data},
                 {"split", std::to_string(data.split.train.size()) + " train / " +
                               std::to_string(data.split.val.size()) + " val / " +
                               std::to_string(data.split.test.size()) + " test"},
                 {"model", c.arch + (c.weights.empty() ? " from scratch" : " from " + c.weights)},
                 {"recipe", c.optimizer + ", " + c.schedule + ", lr " + num(c.lr) + ", " +
                                std::to_string(c.epochs) + " epochs (" + std::to_string(c.freeze_epochs) +
                                " head-only), batch " + std::to_string(c.batch_size) + ", " +
                                std::to_string(c.img_size) + "px, label smoothing " +
                                num(c.label_smoothing) + ", weight decay " +
                                num(c.weight_decay) + (c.augment ? ", augmented" : ", no augmentation")},
                 {"seed", std::to_string(c.seed) + " (split seed " + std::to_string(c.split_seed) + ")"},
                 {"evaluated model", model_label},
                 {"test accuracy", pct(r.accuracy) + " on " + std::to_string(r.count) + " images"},
                 {"macro F1", pct(scores.macro.f1)},
                 {"wall time", format_duration(wall_seconds)}};
  rep.history = read_epoch_records(c.out);
  rep.classes = names;
  rep.confusion = cm;
  rep.scores = scores;
  for (const EvalRecord& e : top_losses(r.records, size_t(c.top_losses), /*mistakes_only=*/true))
    rep.mistakes.push_back({data.folder.samples[size_t(e.index)].path, names[size_t(e.label)],
                            names[size_t(e.score.predicted)], e.score.confidence, e.score.loss});
  write_report_html(file_in(c.out, "report.html"), rep);
  log << "\nwrote " << file_in(c.out, "report.html") << ", results.json, confusion.csv, top_losses.csv\n";
  return {r.accuracy, scores.macro.f1, r.count};
}

}  // namespace minidl
