// OUT/report.html: one self-contained page about a finished run, viewable offline. It holds
// the run's settings, the loss and accuracy curves (inline SVG), the test confusion matrix
// as a heatmap, the per-class precision/recall/F1 table, and a gallery of the worst test
// mistakes with the images embedded as base64 PNG data URIs. No scripts, fonts or links.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "train/metrics.h"
#include "train/run_log.h"

namespace minidl {

struct ReportMistake {
  std::string path;
  std::string truth, predicted;
  double confidence = 0, loss = 0;
};

struct ReportData {
  std::string title;
  std::vector<std::pair<std::string, std::string>> summary;  // shown as a two-column table, in order
  std::vector<EpochRecord> history;
  std::vector<std::string> classes;
  ConfusionMatrix confusion{1};
  ClassificationReport scores;
  std::vector<ReportMistake> mistakes;
  std::string notes;  // a paragraph under the title (e.g. "test set truncated by --max-batches")
};

void write_report_html(const std::string& path, const ReportData& data);

// The image at `path` as "data:image/png;base64,...", scaled down so its longer side is at
// most `max_side` (never up). Empty when the file cannot be decoded.
std::string image_data_uri(const std::string& path, int max_side = 128);

}  // namespace minidl
