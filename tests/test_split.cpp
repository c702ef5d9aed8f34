// Stratified splits: the rounding rule, exact EuroSAT sizes, stratification, disjointness,
// seeding, and the split file's round trip and its errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unistd.h>

#include "datasets/split.h"
#include "test_util.h"

using namespace minidl;
namespace fs = std::filesystem;

namespace {

// An ImageFolder as a scan of "/data" would give, without touching the disk.
ImageFolder synthetic_folder(const std::vector<int64_t>& counts) {
  ImageFolder f;
  f.root = "/data";
  for (size_t c = 0; c < counts.size(); ++c) {
    f.classes.push_back("C" + std::to_string(c));
    for (int64_t i = 0; i < counts[c]; ++i)
      f.samples.push_back({"/data/C" + std::to_string(c) + "/img_" + std::to_string(i) + ".jpg", int64_t(c)});
  }
  return f;
}

const std::vector<int64_t> kEuroSatCounts = {3000, 3000, 3000, 2500, 2500, 2000, 2500, 3000, 2500, 3000};

std::vector<int64_t> per_class(const ImageFolder& f, const std::vector<int64_t>& part) {
  std::vector<int64_t> n(f.classes.size(), 0);
  for (int64_t i : part) ++n[size_t(f.samples[size_t(i)].label)];
  return n;
}

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / ("minidl_" + std::to_string(getpid()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("split_sizes: rounding and at least one image per part") {
  auto sizes = [](int64_t n, double t = 0.6, double v = 0.2) {
    const PartSizes s = split_sizes(n, t, v);
    return std::vector<int64_t>{s.train, s.val, s.test};
  };
  CHECK(sizes(3000) == std::vector<int64_t>{1800, 600, 600});
  CHECK(sizes(2500) == std::vector<int64_t>{1500, 500, 500});
  CHECK(sizes(2000) == std::vector<int64_t>{1200, 400, 400});
  CHECK(sizes(7) == std::vector<int64_t>{4, 1, 2});   // 4.2 -> 4, 1.4 -> 1, rest 2
  CHECK(sizes(5) == std::vector<int64_t>{3, 1, 1});
  CHECK(sizes(4) == std::vector<int64_t>{2, 1, 1});   // 2.4 -> 2, 0.8 -> 1
  CHECK(sizes(3) == std::vector<int64_t>{1, 1, 1});   // 1.8 -> 2, 0.6 -> 1, test 0 -> takes one from train
  CHECK(sizes(2) == std::vector<int64_t>{1, 0, 1});   // too few to guarantee: plain rounding
  CHECK(sizes(1) == std::vector<int64_t>{1, 0, 0});
  CHECK(sizes(0) == std::vector<int64_t>{0, 0, 0});
  CHECK(sizes(10, 0.8, 0.0) == std::vector<int64_t>{8, 0, 2});  // val not asked for: stays empty
  CHECK(sizes(3, 0.9, 0.1) == std::vector<int64_t>{2, 1, 0});   // no test asked for
  CHECK(sizes(5, 0.5, 0.5) == std::vector<int64_t>{3, 2, 0});   // 2.5 rounds away from zero; val clamped
}

TEST_CASE("stratified_split: EuroSAT's class counts give exactly 16,200 / 5,400 / 5,400") {
  const ImageFolder f = synthetic_folder(kEuroSatCounts);
  const Split s = stratified_split(f);
  CHECK(s.train.size() == 16200);
  CHECK(s.val.size() == 5400);
  CHECK(s.test.size() == 5400);
  const std::vector<int64_t> train = per_class(f, s.train), val = per_class(f, s.val), test = per_class(f, s.test);
  for (size_t c = 0; c < kEuroSatCounts.size(); ++c) {
    CHECK(train[c] == kEuroSatCounts[c] * 3 / 5);
    CHECK(val[c] == kEuroSatCounts[c] / 5);
    CHECK(test[c] == kEuroSatCounts[c] / 5);
  }
  // Disjoint and covering: together the parts are every index exactly once.
  std::vector<int64_t> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  all.insert(all.end(), s.test.begin(), s.test.end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(27000);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(all == expected);
  CHECK(std::is_sorted(s.train.begin(), s.train.end()));
}

TEST_CASE("stratified_split: small classes, seeds") {
  const ImageFolder f = synthetic_folder({3, 4, 5, 3, 11});
  const Split s = stratified_split(f, 0.6, 0.2, 7);
  CHECK(per_class(f, s.train) == std::vector<int64_t>{1, 2, 3, 1, 7});
  CHECK(per_class(f, s.val) == std::vector<int64_t>{1, 1, 1, 1, 2});
  CHECK(per_class(f, s.test) == std::vector<int64_t>{1, 1, 1, 1, 2});

  const ImageFolder big = synthetic_folder(kEuroSatCounts);
  const Split a = stratified_split(big, 0.6, 0.2, 1), b = stratified_split(big, 0.6, 0.2, 1);
  const Split c = stratified_split(big, 0.6, 0.2, 2);
  CHECK(a.train == b.train);
  CHECK(a.val == b.val);
  CHECK(a.test == b.test);
  CHECK(a.train != c.train);
  CHECK(a.test != c.test);
  // Shuffled, not cut in scan order: class 0's test images are not simply its last 600.
  std::vector<int64_t> last600(600);
  std::iota(last600.begin(), last600.end(), 2400);
  CHECK(std::vector<int64_t>(a.test.begin(), a.test.begin() + 600) != last600);
  CHECK(per_class(big, c.test) == per_class(big, a.test));  // sizes depend on counts only

  CHECK_ERROR_MENTIONS(stratified_split(f, 0.0, 0.2), "train_frac");
  CHECK_ERROR_MENTIONS(stratified_split(f, 0.7, 0.4), "train_frac + val_frac <= 1");
}

TEST_CASE("split files: round trip, and errors for tampered files") {
  const ImageFolder f = synthetic_folder({6, 5, 4});
  const Split s = stratified_split(f, 0.6, 0.2, 3);
  const std::string path = temp_file("split.json");
  write_split_file(path, f, s);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const Split back = read_split_file(path, f);
  CHECK(back.train == s.train);
  CHECK(back.val == s.val);
  CHECK(back.test == s.test);

  nlohmann::json j;
  std::ifstream(path) >> j;
  CHECK(j["format"] == "minidl-split");
  CHECK(j["classes"] == nlohmann::json({"C0", "C1", "C2"}));
  REQUIRE(j["train"].size() == s.train.size());
  CHECK(j["train"][0]["path"] == f.relative_path(s.train[0]));  // relative to root
  CHECK(j["train"][0]["path"].get<std::string>().rfind("C0/img_", 0) == 0);
  CHECK(j["train"][0]["label"] == 0);

  // The same split read against another root (the dataset moved) still resolves.
  ImageFolder moved = f;
  moved.root = "/elsewhere";
  for (Sample& smp : moved.samples) smp.path.replace(0, 5, "/elsewhere");
  CHECK(read_split_file(path, moved).test == s.test);

  auto tampered = [&](auto edit) {
    nlohmann::json t = j;
    edit(t);
    const std::string p = temp_file("tampered.json");
    std::ofstream(p) << t.dump(1);
    return p;
  };
  const std::string missing = tampered([](nlohmann::json& t) { t["val"][0]["path"] = "C1/gone.jpg"; });
  CHECK_ERROR_MENTIONS(read_split_file(missing, f), missing.c_str(), "not in '/data'", "C1/gone.jpg");

  const std::string classes = tampered([](nlohmann::json& t) { t["classes"] = {"C0", "C2", "C1"}; });
  CHECK_ERROR_MENTIONS(read_split_file(classes, f), classes.c_str(), "classes [C0, C2, C1]", "[C0, C1, C2]");

  const std::string twice = tampered([](nlohmann::json& t) { t["test"].push_back(t["train"][0]); });
  CHECK_ERROR_MENTIONS(read_split_file(twice, f), twice.c_str(), "listed twice", "in train and in test");

  const std::string label = tampered([](nlohmann::json& t) { t["train"][0]["label"] = 2; });
  CHECK_ERROR_MENTIONS(read_split_file(label, f), label.c_str(), "has label 2");

  const std::string junk = temp_file("junk.json");
  std::ofstream(junk) << "{\"format\": \"minidl-split\", ";
  CHECK_ERROR_MENTIONS(read_split_file(junk, f), junk.c_str(), "not valid JSON");
  CHECK_ERROR_MENTIONS(read_split_file(temp_file("absent.json"), f), "absent.json", "cannot open");

  for (const std::string& p : {path, missing, classes, twice, label, junk}) fs::remove(p);
}
