// A small line chart as standalone SVG text: the report's loss/accuracy curves and the LR
// finder's plot. No scripts or external fonts, so it renders anywhere, inline or as a file.
#pragma once
#include <string>
#include <vector>

namespace minidl {

struct ChartSeries {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points are skipped
  std::string color = "#1f77b4";
};

struct ChartOptions {
  std::string title, x_label, y_label;
  bool log_x = false;        // x axis in log10 (all x must be > 0)
  bool integer_x = false;    // x ticks on whole numbers only (epochs)
  int width = 520, height = 320;
  bool has_marker = false;   // a dashed vertical line at marker_x, labelled marker_label
  double marker_x = 0;
  std::string marker_label;
};

std::string line_chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& options);

}  // namespace minidl
