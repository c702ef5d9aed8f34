#include "train/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "train/text_io.h"

namespace minidl {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Up to ~6 round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

}  // namespace

std::string line_chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& o) {
  const double left = 60, right = 16, top = 30, bottom = 44;
  const double pw = o.width - left - right, ph = o.height - top - bottom;
  auto tx = [&](double x) { return o.log_x ? std::log10(x) : x; };
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (o.log_x && s.x[i] <= 0)) continue;
      x0 = std::min(x0, tx(s.x[i]));
      x1 = std::max(x1, tx(s.x[i]));
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw: an empty frame
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return left + (tx(x) - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * ph; };

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << o.width << "\" height=\"" << o.height
    << "\" viewBox=\"0 0 " << o.width << " " << o.height << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << o.width / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">" << html_escape(o.title)
    << "</text>\n";
  // Grid and tick labels.
  for (double t : nice_ticks(y0, y1)) {
    s << "<line x1=\"" << num(left) << "\" x2=\"" << num(left + pw) << "\" y1=\"" << num(py(t)) << "\" y2=\""
      << num(py(t)) << "\" stroke=\"#e5e5e5\"/>";
    s << "<text x=\"" << num(left - 4) << "\" y=\"" << num(py(t) + 4) << "\" text-anchor=\"end\">" << tick_label(t)
      << "</text>\n";
  }
  for (double t : nice_ticks(x0, x1)) {
    const double xv = o.log_x ? std::pow(10.0, t) : t;
    if ((o.log_x || o.integer_x) && std::abs(t - std::round(t)) > 1e-9) continue;  // decades / whole epochs
    s << "<line x1=\"" << num(px(xv)) << "\" x2=\"" << num(px(xv)) << "\" y1=\"" << num(top) << "\" y2=\""
      << num(top + ph) << "\" stroke=\"#e5e5e5\"/>";
    s << "<text x=\"" << num(px(xv)) << "\" y=\"" << num(top + ph + 14) << "\" text-anchor=\"middle\">"
      << tick_label(xv) << "</text>\n";
  }
  s << "<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(pw) << "\" height=\"" << num(ph)
    << "\" fill=\"none\" stroke=\"#888\"/>\n";
  s << "<text x=\"" << num(left + pw / 2) << "\" y=\"" << o.height - 6 << "\" text-anchor=\"middle\">"
    << html_escape(o.x_label) << "</text>\n";
  s << "<text transform=\"translate(14," << num(top + ph / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << html_escape(o.y_label) << "</text>\n";
  if (o.has_marker && (!o.log_x || o.marker_x > 0)) {
    const double mx = px(o.marker_x);
    s << "<line x1=\"" << num(mx) << "\" x2=\"" << num(mx) << "\" y1=\"" << num(top) << "\" y2=\"" << num(top + ph)
      << "\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>";
    s << "<text x=\"" << num(mx + 4) << "\" y=\"" << num(top + 12) << "\" fill=\"#d62728\">"
      << html_escape(o.marker_label) << "</text>\n";
  }
  // Series, each a polyline (one point: a dot), then the legend.
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& se = series[k];
    std::ostringstream pts;
    int n = 0;
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i]) || (o.log_x && se.x[i] <= 0)) continue;
      pts << num(px(se.x[i])) << "," << num(py(se.y[i])) << " ";
      ++n;
    }
    if (n > 1)
      s << "<polyline fill=\"none\" stroke=\"" << se.color << "\" stroke-width=\"1.8\" points=\"" << pts.str()
        << "\"/>\n";
    for (size_t i = 0; n <= 20 && i < se.x.size() && i < se.y.size(); ++i)  // dots on short curves
      if (std::isfinite(se.x[i]) && std::isfinite(se.y[i]) && (!o.log_x || se.x[i] > 0))
        s << "<circle cx=\"" << num(px(se.x[i])) << "\" cy=\"" << num(py(se.y[i])) << "\" r=\"2.5\" fill=\""
          << se.color << "\"/>";
    const double ly = top + 8 + 14 * double(k);
    s << "<line x1=\"" << num(left + pw - 110) << "\" x2=\"" << num(left + pw - 92) << "\" y1=\"" << num(ly)
      << "\" y2=\"" << num(ly) << "\" stroke=\"" << se.color << "\" stroke-width=\"2\"/>";
    s << "<text x=\"" << num(left + pw - 88) << "\" y=\"" << num(ly + 4) << "\">" << html_escape(se.name)
      << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace minidl
