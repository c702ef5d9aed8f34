#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "datasets/image.h"
#include "datasets/transforms.h"
#include "stb_image_write.h"  // declarations only; libstb holds the implementation
#include "train/svg_chart.h"
#include "train/text_io.h"

namespace minidl {

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string curves(const std::vector<EpochRecord>& h, bool loss) {
  ChartSeries train{loss ? "train loss" : "train acc", {}, {}, "#1f77b4"};
  ChartSeries val{loss ? "val loss" : "val acc", {}, {}, "#ff7f0e"};
  for (const auto& r : h) {
    train.x.push_back(r.epoch);
    val.x.push_back(r.epoch);
    train.y.push_back(loss ? r.train_loss : 100 * r.train_acc);
    val.y.push_back(loss ? r.val_loss : 100 * r.val_acc);
  }
  ChartOptions o;
  o.title = loss ? "Loss" : "Accuracy (%)";
  o.x_label = "epoch";
  o.integer_x = true;
  o.y_label = loss ? "cross-entropy" : "accuracy %";
  return line_chart_svg({train, val}, o);
}

// White -> blue by the share of the row (the class's recall for the diagonal), so classes of
// different sizes read the same; the count is printed in the cell.
std::string heatmap(const ConfusionMatrix& cm, const std::vector<std::string>& names) {
  std::ostringstream s;
  s << "<table class=\"cm\"><tr><th>true \\ predicted</th>";
  for (size_t j = 0; j < names.size(); ++j) s << "<th title=\"" << html_escape(names[j]) << "\">" << j << "</th>";
  s << "</tr>\n";
  for (int64_t i = 0; i < cm.num_classes(); ++i) {
    int64_t row = 0;
    for (int64_t j = 0; j < cm.num_classes(); ++j) row += cm.at(i, j);
    s << "<tr><th class=\"name\">" << i << " " << html_escape(names[size_t(i)]) << "</th>";
    for (int64_t j = 0; j < cm.num_classes(); ++j) {
      const double f = row ? double(cm.at(i, j)) / double(row) : 0.0;
      const int r = int(std::lround(255 - 225 * f)), g = int(std::lround(255 - 150 * f)), b = 255;
      s << "<td style=\"background:rgb(" << r << "," << g << "," << b << ");color:" << (f > 0.55 ? "white" : "black")
        << "\" title=\"" << fixed(100 * f, 1) << "% of " << html_escape(names[size_t(i)]) << "\">" << cm.at(i, j)
        << "</td>";
    }
    s << "</tr>\n";
  }
  s << "</table>\n";
  return s.str();
}

std::string class_table(const ClassificationReport& r, const std::vector<std::string>& names) {
  std::ostringstream s;
  s << "<table class=\"num\"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>\n";
  auto row = [&](const std::string& name, const ClassScores& c, bool bold) {
    s << "<tr" << (bold ? " class=\"avg\"" : "") << "><td>" << html_escape(name) << "</td><td>"
      << fixed(c.precision, 4) << "</td><td>" << fixed(c.recall, 4) << "</td><td>" << fixed(c.f1, 4) << "</td><td>"
      << c.support << "</td></tr>\n";
  };
  for (size_t k = 0; k < names.size() && k < r.per_class.size(); ++k) row(names[k], r.per_class[k], false);
  row("macro avg", r.macro, true);
  row("weighted avg", r.weighted, true);
  s << "<tr class=\"avg\"><td>accuracy</td><td colspan=\"3\">" << fixed(r.accuracy, 4) << "</td><td>"
    << r.macro.support << "</td></tr></table>\n";
  return s.str();
}

std::string gallery(const std::vector<ReportMistake>& mistakes) {
  if (mistakes.empty()) return "<p>No mistakes on the evaluated test images.</p>\n";
  std::ostringstream s;
  s << "<div class=\"gallery\">\n";
  for (const auto& m : mistakes) {
    const std::string uri = image_data_uri(m.path);
    s << "<figure>";
    if (uri.empty())
      s << "<div class=\"noimg\">(image unavailable)</div>";
    else
      s << "<img src=\"" << uri << "\" alt=\"" << html_escape(m.path) << "\">";
    s << "<figcaption><b>" << html_escape(m.predicted) << "</b> " << fixed(100 * m.confidence, 1)
      << "%<br>true: " << html_escape(m.truth) << "<br>loss " << fixed(m.loss, 3) << "<br><span class=\"path\">"
      << html_escape(m.path) << "</span></figcaption></figure>\n";
  }
  s << "</div>\n";
  return s.str();
}

const char* kStyle = R"(<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; }
table.num td { text-align: right; } table.num td:first-child { text-align: left; }
tr.avg { font-weight: bold; background: #f6f6f6; }
table.cm td { text-align: center; min-width: 34px; } table.cm th.name { text-align: left; font-weight: normal; }
.charts svg { margin-right: 12px; border: 1px solid #eee; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 150px; font-size: 12px; }
figure img { width: 128px; height: 128px; object-fit: contain; image-rendering: pixelated; border: 1px solid #ccc; }
.noimg { width: 128px; height: 128px; background: #eee; display: flex; align-items: center; justify-content: center; }
.path { color: #777; word-break: break-all; font-size: 10px; }
</style>
)";

}  // namespace

std::string image_data_uri(const std::string& path, int max_side) {
  Image img;
  try {
    img = decode_image_file(path);
  } catch (const std::exception&) {
    return "";
  }
  const int longer = std::max(img.height, img.width);
  if (longer > max_side) {
    const double f = double(max_side) / double(longer);
    img = resize_bilinear(img, std::max(1, int(std::lround(img.height * f))), std::max(1, int(std::lround(img.width * f))));
  }
  std::vector<uint8_t> png;
  auto sink = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(sink, &png, img.width, img.height, 3, img.pixels.data(), img.width * 3)) return "";
  return "data:image/png;base64," + base64_encode(png.data(), png.size());
}

void write_report_html(const std::string& path, const ReportData& d) {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" << html_escape(d.title)
    << "</title>\n" << kStyle << "</head><body>\n";
  s << "<h1>" << html_escape(d.title) << "</h1>\n";
  if (!d.notes.empty()) s << "<p>" << html_escape(d.notes) << "</p>\n";
  s << "<table>\n";
  for (const auto& [k, v] : d.summary) s << "<tr><th style=\"text-align:left\">" << html_escape(k) << "</th><td>" << html_escape(v) << "</td></tr>\n";
  s << "</table>\n";
  s << "<h2>Training curves</h2>\n<div class=\"charts\">\n" << curves(d.history, true) << curves(d.history, false)
    << "</div>\n";
  s << "<h2>Test confusion matrix</h2>\n<p>Rows: true class; columns: predicted class. Colour: share of the row.</p>\n"
    << heatmap(d.confusion, d.classes);
  s << "<h2>Per-class scores (test)</h2>\n" << class_table(d.scores, d.classes);
  s << "<h2>Worst mistakes (test, highest loss first)</h2>\n" << gallery(d.mistakes);
  s << "</body></html>\n";
  write_text_atomic(path, s.str());
}

}  // namespace minidl
