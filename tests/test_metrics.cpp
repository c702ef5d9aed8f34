// train/metrics.h against numbers worked out by hand, and the small text/SVG helpers the
// run files use.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "models/classifier.h"  // csv_field
#include "train/metrics.h"
#include "train/svg_chart.h"
#include "train/text_io.h"
#include "test_util.h"

using namespace minidl;
namespace fs = std::filesystem;

namespace {

// true \ predicted
//   [5 2 1]     rows (support) 8, 4, 8; columns (predicted) 6, 7, 7; trace 14 of 20
//   [1 3 0]
//   [0 2 6]
ConfusionMatrix hand_matrix() {
  const int counts[3][3] = {{5, 2, 1}, {1, 3, 0}, {0, 2, 6}};
  ConfusionMatrix cm(3);
  for (int t = 0; t < 3; ++t)
    for (int p = 0; p < 3; ++p)
      for (int n = 0; n < counts[t][p]; ++n) cm.add(t, p);
  return cm;
}

}  // namespace

TEST_CASE("confusion matrix: counts, total, accuracy") {
  const ConfusionMatrix cm = hand_matrix();
  CHECK(cm.total() == 20);
  CHECK(cm.correct() == 14);
  CHECK(cm.at(0, 1) == 2);
  CHECK(cm.at(2, 1) == 2);
  CHECK(cm.accuracy() == doctest::Approx(0.7));
  CHECK(ConfusionMatrix(4).accuracy() == 0.0);
  ConfusionMatrix bad(3);
  CHECK_ERROR_MENTIONS(bad.add(3, 0), "ConfusionMatrix::add", "[0, 3)");
  CHECK_ERROR_MENTIONS(ConfusionMatrix(0), "num_classes");
}

TEST_CASE("classification report: per class, macro and weighted, by hand") {
  const ClassificationReport r = classification_report(hand_matrix());
  REQUIRE(r.per_class.size() == 3);
  // precision = TP / column sum, recall = TP / row sum, F1 = 2TP / (2TP + FP + FN)
  CHECK(r.per_class[0].precision == doctest::Approx(5.0 / 6));
  CHECK(r.per_class[1].precision == doctest::Approx(3.0 / 7));
  CHECK(r.per_class[2].precision == doctest::Approx(6.0 / 7));
  CHECK(r.per_class[0].recall == doctest::Approx(5.0 / 8));
  CHECK(r.per_class[1].recall == doctest::Approx(3.0 / 4));
  CHECK(r.per_class[2].recall == doctest::Approx(6.0 / 8));
  CHECK(r.per_class[0].f1 == doctest::Approx(10.0 / 14));
  CHECK(r.per_class[1].f1 == doctest::Approx(6.0 / 11));
  CHECK(r.per_class[2].f1 == doctest::Approx(12.0 / 15));
  CHECK(r.per_class[0].support == 8);
  CHECK(r.per_class[1].support == 4);
  CHECK(r.per_class[2].support == 8);
  CHECK(r.macro.precision == doctest::Approx(89.0 / 126));
  CHECK(r.macro.recall == doctest::Approx(17.0 / 24));
  CHECK(r.macro.f1 == doctest::Approx((10.0 / 14 + 6.0 / 11 + 12.0 / 15) / 3));
  CHECK(r.weighted.precision == doctest::Approx(16.0 / 21));
  CHECK(r.weighted.recall == doctest::Approx(0.7));  // support-weighted recall is the accuracy
  CHECK(r.weighted.f1 == doctest::Approx((8 * 10.0 / 14 + 4 * 6.0 / 11 + 8 * 12.0 / 15) / 20));
  CHECK(r.macro.support == 20);
  CHECK(r.accuracy == doctest::Approx(0.7));
}

TEST_CASE("classification report: a class never seen nor predicted scores 0 and counts in the macro mean") {
  ConfusionMatrix cm(3);
  cm.add(0, 0);
  cm.add(0, 1);
  cm.add(1, 1);
  const ClassificationReport r = classification_report(cm);
  CHECK(r.per_class[2].precision == 0.0);
  CHECK(r.per_class[2].recall == 0.0);
  CHECK(r.per_class[2].f1 == 0.0);
  CHECK(r.per_class[2].support == 0);
  CHECK(r.per_class[0].precision == doctest::Approx(1.0));
  CHECK(r.per_class[0].recall == doctest::Approx(0.5));
  CHECK(r.per_class[1].precision == doctest::Approx(0.5));
  CHECK(r.macro.recall == doctest::Approx((0.5 + 1.0 + 0.0) / 3));
  CHECK(r.weighted.recall == doctest::Approx((2 * 0.5 + 1 * 1.0) / 3));
}

TEST_CASE("score_logits: argmax, softmax confidence and cross-entropy in double") {
  const float a[3] = {1, 2, 3};
  const SampleScore s = score_logits(a, 3, 0);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(s.predicted == 2);
  CHECK(s.confidence == doctest::Approx(std::exp(3.0) / z));
  CHECK(s.loss == doctest::Approx(std::log(z) - 1.0));
  CHECK(score_logits(a, 3, 2).loss == doctest::Approx(std::log(z) - 3.0));

  const float tie[3] = {2, 2, 1};
  CHECK(score_logits(tie, 3, 1).predicted == 0);  // ties go to the lower index

  const float big[2] = {1000, 0};  // exp(1000) would overflow without the max shift
  const SampleScore b = score_logits(big, 2, 1);
  CHECK(b.confidence == doctest::Approx(1.0));
  CHECK(b.loss == doctest::Approx(1000.0));
  CHECK(std::isfinite(b.loss));
  CHECK_ERROR_MENTIONS(score_logits(a, 3, 3), "label 3");
}

TEST_CASE("top_losses: largest first, ties by index, mistakes only on request") {
  std::vector<EvalRecord> recs;
  auto add = [&](int64_t index, int64_t label, int64_t pred, double loss) {
    EvalRecord r;
    r.index = index;
    r.label = label;
    r.score.predicted = pred;
    r.score.loss = loss;
    recs.push_back(r);
  };
  add(0, 0, 0, 0.5);
  add(1, 1, 0, 2.0);
  add(2, 0, 0, 3.0);  // correct but unsure: the largest loss
  add(3, 2, 1, 2.0);  // same loss as index 1
  add(4, 1, 1, 0.1);
  const auto all = top_losses(recs, 3);
  REQUIRE(all.size() == 3);
  CHECK(all[0].index == 2);
  CHECK(all[1].index == 1);
  CHECK(all[2].index == 3);
  const auto wrong = top_losses(recs, 10, true);
  REQUIRE(wrong.size() == 2);
  CHECK(wrong[0].index == 1);
  CHECK(wrong[1].index == 3);
  CHECK(top_losses(recs, 0).empty());
}

TEST_CASE("tables and CSV name every class; CSV fields are quoted") {
  const std::vector<std::string> names = {"Forest", "Sea, Lake", "River"};
  const ConfusionMatrix cm = hand_matrix();
  const std::string table = format_classification_table(classification_report(cm), names);
  CHECK(table.find("Sea, Lake") != std::string::npos);
  CHECK(table.find("macro avg") != std::string::npos);
  CHECK(table.find("weighted avg") != std::string::npos);
  CHECK(table.find("0.8333") != std::string::npos);  // Forest's precision
  const std::string ct = format_confusion_table(cm, names);
  CHECK(ct.find("River") != std::string::npos);
  CHECK_ERROR_MENTIONS(format_confusion_table(cm, {"a"}), "1 class names for 3 classes");

  const fs::path dir = minidl::testing::unique_temp("test_metrics");
  fs::create_directories(dir);
  const std::string path = (dir / "cm.csv").string();
  write_confusion_csv(path, cm, names);
  CHECK(read_text_file(path) ==
        "true\\predicted,Forest,\"Sea, Lake\",River\n"
        "Forest,5,2,1\n"
        "\"Sea, Lake\",1,3,0\n"
        "River,0,2,6\n");
  CHECK_FALSE(fs::exists(path + ".tmp"));
  fs::remove_all(dir);
}

TEST_CASE("text helpers: base64, escaping") {
  const std::string s = "Man";
  CHECK(base64_encode(reinterpret_cast<const uint8_t*>(s.data()), 3) == "TWFu");
  CHECK(base64_encode(reinterpret_cast<const uint8_t*>(s.data()), 2) == "TWE=");
  CHECK(base64_encode(reinterpret_cast<const uint8_t*>(s.data()), 1) == "TQ==");
  CHECK(base64_encode(nullptr, 0).empty());
  CHECK(html_escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
}

TEST_CASE("line chart SVG: well-formed, skips non-finite points, escapes text") {
  ChartSeries a{"train <loss>", {1, 2, 3}, {2.0, NAN, 1.0}, "#123456"};
  ChartOptions o;
  o.title = "Loss & more";
  const std::string svg = line_chart_svg({a}, o);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(svg.find("train &lt;loss&gt;") != std::string::npos);
  CHECK(svg.find("Loss &amp; more") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("NaN") == std::string::npos);
  // Empty series and a log axis still give a frame, not a crash.
  ChartOptions lg;
  lg.log_x = true;
  CHECK(line_chart_svg({ChartSeries{"x", {}, {}, "#000"}}, lg).find("</svg>") != std::string::npos);
}
