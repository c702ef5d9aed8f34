// The classify app's core (models/classifier.h): a small saved resnet18 classifies a few
// tiny images exactly as a direct forward pass would; bad images are skipped; class names
// come from the checkpoint, a classes file or the indices; CSV output is well-formed.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "datasets/image.h"
#include "datasets/transforms.h"
#include "models/checkpoint_meta.h"
#include "models/classifier.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "stb_image_write.h"  // declarations only; the implementation is in libstb
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kNames = {"Forest", "Sea, Lake", "say \"hi\""};

Image pattern_image(int h, int w, int seed) {
  Image img = make_image(h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = uint8_t((y * 37 + x * 11 * (seed + 1) + c * 71 + seed * 50) % 256);
  return img;
}

void write_png(const fs::path& p, const Image& img) {
  REQUIRE(stbi_write_png(p.string().c_str(), img.width, img.height, 3, img.pixels.data(), img.width * 3) != 0);
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Built once for the whole file: saving a resnet18 takes a moment, and the tests only read.
struct Fixture {
  fs::path dir;
  std::shared_ptr<ResNet> model;  // the saved weights, in eval mode
  std::string named;              // checkpoint with metadata: arch, num_classes, classes, img_size 32
  std::string bare;               // the same weights, no metadata at all
  std::string custom_norm;        // metadata with its own mean/std
  std::vector<std::string> images;  // 32x32 PNG, 40x24 PNG (resized), 32x32 JPEG, in a sub-folder
  std::string corrupt;
  // Shared because building one takes a while (a random init the load then overwrites).
  std::unique_ptr<Classifier> named_classifier;    // from `named`
  std::unique_ptr<Classifier> unnamed_classifier;  // from `bare`, arch resnet18, other settings defaulted
  std::vector<std::vector<double>> want;           // reference probabilities of `images`

  Fixture() {
    dir = minidl::testing::unique_temp("test_classify");
    fs::remove_all(dir);
    fs::create_directories(dir / "imgs" / "sub");
    Generator gen(7);
    model = make_resnet("resnet18", 3, gen);
    model->eval();
    ModelMeta meta;
    meta.arch = "resnet18";
    meta.num_classes = 3;
    meta.classes = kNames;
    meta.img_size = 32;
    named = (dir / "named.safetensors").string();
    save_weights_file(*model, named, to_metadata(meta));
    bare = (dir / "bare.safetensors").string();
    save_weights_file(*model, bare);
    meta.mean = std::array<float, 3>{0.5f, 0.4f, 0.3f};
    meta.stddev = std::array<float, 3>{0.2f, 0.25f, 0.3f};
    custom_norm = (dir / "norm.safetensors").string();
    save_weights_file(*model, custom_norm, to_metadata(meta));

    images.push_back((dir / "imgs" / "a.png").string());
    write_png(images.back(), pattern_image(32, 32, 0));
    images.push_back((dir / "imgs" / "b, wide.png").string());  // a comma: quoted in CSV
    write_png(images.back(), pattern_image(24, 40, 1));
    images.push_back((dir / "imgs" / "sub" / "c.jpg").string());
    const Image c = pattern_image(32, 32, 2);
    REQUIRE(stbi_write_jpg(images.back().c_str(), 32, 32, 3, c.pixels.data(), 90) != 0);
    corrupt = (dir / "imgs" / "corrupt.jpg").string();
    write_text(corrupt, "\xFF\xD8\xFF\xE0 this is not really a JPEG");

    named_classifier = std::make_unique<Classifier>(named);
    ClassifierOptions r18;
    r18.arch = "resnet18";
    unnamed_classifier = std::make_unique<Classifier>(bare, r18);
    want = direct_probs(*model, images, kImageNetMean, kImageNetStd);
  }

  // Reference: decode, images_to_batch, forward, softmax -- none of the classifier's code
  // except softmax_rows, which is checked on its own below.
  static std::vector<std::vector<double>> direct_probs(ResNet& model, const std::vector<std::string>& paths,
                                                       const float* mean, const float* stddev) {
    std::vector<Image> imgs;
    for (const auto& p : paths) imgs.push_back(decode_image_file(p));
    NoGradGuard no_grad;
    Tensor logits = model.forward(images_to_batch(imgs, 32, mean, stddev));
    return softmax_rows(logits.to_vector<float>(), int64_t(paths.size()), 3);
  }
};

const Fixture& fixture() {
  static Fixture f;
  return f;
}

std::vector<Prediction> run_all(const Classifier& c, const std::vector<std::string>& paths, int batch,
                                std::vector<std::string>* skipped = nullptr) {
  std::vector<Prediction> out;
  ClassifyHooks hooks;
  hooks.on_result = [&](const Prediction& p) { out.push_back(p); };
  hooks.on_skip = [&](const std::string& path, const std::string& reason) {
    CHECK(reason.find(path) != std::string::npos);
    if (skipped) skipped->push_back(path);
  };
  const size_t classified = classify_files(c, paths, batch, hooks);
  CHECK(classified == out.size());
  return out;
}

void check_probs_match(const std::vector<Prediction>& got, const std::vector<std::vector<double>>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(max_rel_error(got[i].probs, want[i]) < 1e-5);
    double total = 0;
    for (double p : got[i].probs) total += p;
    CHECK(total == doctest::Approx(1.0).epsilon(1e-12));
  }
}

}  // namespace

TEST_CASE("classifier: probabilities equal a direct forward pass, in any batch size") {
  const Fixture& f = fixture();
  const Classifier& c = *f.named_classifier;
  CHECK(c.arch() == "resnet18");
  CHECK(c.num_classes() == 3);
  CHECK(c.img_size() == 32);
  for (int batch : {2, 32}) {  // 2: a full batch then a partial one
    CAPTURE(batch);
    const std::vector<Prediction> got = run_all(c, f.images, batch);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].path == f.images[i]);
    check_probs_match(got, f.want);
  }
}

TEST_CASE("classifier: the checkpoint's mean/std replace ImageNet's") {
  const Fixture& f = fixture();
  const Classifier c(f.custom_norm);
  CHECK(c.mean() == std::array<float, 3>{0.5f, 0.4f, 0.3f});
  CHECK(c.stddev() == std::array<float, 3>{0.2f, 0.25f, 0.3f});
  check_probs_match(run_all(c, f.images, 4), Fixture::direct_probs(*f.model, f.images, c.mean().data(), c.stddev().data()));
  CHECK(f.named_classifier->mean() == std::array<float, 3>{kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]});
}

TEST_CASE("classifier: without metadata: resnet50, the class count of fc.weight, input 224") {
  const Fixture& f = fixture();
  const Classifier& c = *f.unnamed_classifier;  // arch given, the rest defaulted
  CHECK(c.num_classes() == 3);
  CHECK(c.img_size() == kDefaultImgSize);
  CHECK_FALSE(c.has_class_names());
  // With no arch either, resnet50 is assumed, which resnet18 weights do not fit: a
  // strict-load error listing the keys.
  CHECK_ERROR_MENTIONS(Classifier(f.bare), "bare.safetensors", "missing", "layer1.0.conv3.weight");
}

TEST_CASE("classifier: options that contradict the checkpoint are errors naming the file and tensor") {
  const Fixture& f = fixture();
  ClassifierOptions o;
  o.num_classes = 5;
  // The metadata's 3 names no longer fit 5 classes.
  CHECK_ERROR_MENTIONS(Classifier(f.named, o), "named.safetensors", "3 class names", "5 classes");
  o.arch = "resnet18";
  CHECK_ERROR_MENTIONS(Classifier(f.bare, o), "bare.safetensors", "fc.weight", "[5, 512]", "[3, 512]");
  ClassifierOptions unknown;
  unknown.arch = "resnet19";
  CHECK_ERROR_MENTIONS(Classifier(f.named, unknown), "resnet19", "resnet50");
  ClassifierOptions tiny;
  tiny.img_size = 8;
  CHECK_ERROR_MENTIONS(Classifier(f.named, tiny), "input size 8", "16..1024");
  CHECK_ERROR_MENTIONS(Classifier((f.dir / "nope.safetensors").string()), "nope.safetensors");
  // No metadata and no fc.weight: the class count cannot be known.
  const std::string headless = (f.dir / "headless.safetensors").string();
  save_safetensors(headless, {{"conv1.weight", ones({2})}});
  CHECK_ERROR_MENTIONS(Classifier(headless), "headless.safetensors", "fc.weight", "--num-classes");
}

TEST_CASE("classifier: class names from a classes file, else the checkpoint, else the indices") {
  const Fixture& f = fixture();
  const Classifier& from_meta = *f.named_classifier;
  CHECK(from_meta.names_source() == "checkpoint");
  CHECK(from_meta.class_name(1) == "Sea, Lake");
  CHECK(from_meta.column_name(2) == "say \"hi\"");

  const fs::path file = f.dir / "names.txt";
  write_text(file, "  alpha \r\nbeta\r\ngamma\n\n");
  ClassifierOptions o;
  o.classes_file = file.string();
  const Classifier from_file(f.named, o);  // the file overrides the checkpoint's names
  CHECK(from_file.names_source() == file.string());
  CHECK(from_file.class_name(0) == "alpha");
  CHECK(from_file.class_name(2) == "gamma");

  const Classifier& unnamed = *f.unnamed_classifier;
  CHECK(unnamed.class_name(2) == "2");
  CHECK(unnamed.column_name(2) == "class_2");

  Prediction p{"x.png", {0.2, 0.5, 0.3}};
  CHECK(format_top_k(from_meta, p, 2) == "x.png: Sea, Lake 0.5000, say \"hi\" 0.3000");
  CHECK(format_top_k(unnamed, p, 10) == "x.png: 1 0.5000, 2 0.3000, 0 0.2000");  // k clamped to the classes
}

TEST_CASE("classifier: a classes file with the wrong count, or an empty line, is an error naming the file") {
  const Fixture& f = fixture();
  const fs::path two = f.dir / "two.txt";
  write_text(two, "a\nb\n");
  ClassifierOptions o;
  o.classes_file = two.string();
  CHECK_ERROR_MENTIONS(Classifier(f.named, o), "two.txt", "2 class names", "3 classes");
  const fs::path gap = f.dir / "gap.txt";
  write_text(gap, "a\n\nb\nc\n");
  CHECK_ERROR_MENTIONS(read_class_names(gap.string()), "gap.txt", "line 2 is empty");
  const fs::path empty = f.dir / "empty.txt";
  write_text(empty, "\n \n");
  CHECK_ERROR_MENTIONS(read_class_names(empty.string()), "empty.txt", "no names");
  CHECK_ERROR_MENTIONS(read_class_names((f.dir / "absent.txt").string()), "absent.txt");
}

TEST_CASE("classifier: a folder is classified; corrupt and missing images are skipped and reported") {
  const Fixture& f = fixture();
  const Classifier& c = *f.named_classifier;
  // The folder holds a.png, "b, wide.png", corrupt.jpg and sub/c.jpg, in that (sorted) order.
  std::vector<std::string> paths = list_images((f.dir / "imgs").string());
  REQUIRE(paths.size() == 4);
  CHECK(paths[2] == f.corrupt);
  paths.push_back((f.dir / "missing.png").string());
  std::vector<std::string> skipped;
  const std::vector<Prediction> got = run_all(c, paths, 2, &skipped);
  CHECK(skipped == std::vector<std::string>{f.corrupt, paths[4]});
  REQUIRE(got.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(got[i].path == f.images[i]);
  check_probs_match(got, f.want);
}

TEST_CASE("classifier: nothing classifiable is an error") {
  const Fixture& f = fixture();
  const Classifier& c = *f.named_classifier;
  size_t reported = 0, last_done = 0;
  ClassifyHooks hooks;
  hooks.on_skip = [&](const std::string&, const std::string&) { ++reported; };
  hooks.on_batch = [&](size_t done, size_t total) {
    last_done = done;
    CHECK(total == 2);
  };
  CHECK_ERROR_MENTIONS(classify_files(c, {f.corrupt, f.corrupt}, 4, hooks), "none of the 2 images");
  CHECK(reported == 2);
  CHECK(last_done == 2);
  CHECK_ERROR_MENTIONS(classify_files(c, {}, 4, {}), "no images");
  CHECK_ERROR_MENTIONS(classify_files(c, f.images, 0, {}), "batch size");
}

TEST_CASE("classifier: CSV has the header, one quoted row per image, and probabilities to 1e-8") {
  const Fixture& f = fixture();
  const Classifier& c = *f.named_classifier;
  const fs::path out = f.dir / "preds.csv";
  fs::remove(out);
  std::vector<Prediction> preds;
  for (size_t i = 0; i < f.images.size(); ++i) preds.push_back({f.images[i], f.want[i]});
  {
    PredictionCsv csv(out.string(), c);
    for (const auto& p : preds) csv.write(p);
    CHECK(fs::exists(out.string() + ".tmp"));
    CHECK_FALSE(fs::exists(out));
    csv.commit();
  }
  CHECK_FALSE(fs::exists(out.string() + ".tmp"));
  std::istringstream text(read_text(out));
  std::string line;
  std::getline(text, line);
  CHECK(line == "path,label,confidence,Forest,\"Sea, Lake\",\"say \"\"hi\"\"\"");
  for (const Prediction& p : preds) {
    REQUIRE(std::getline(text, line));
    const int64_t best = top_k(p.probs, 1)[0];
    const std::string path_field = p.path.find(',') != std::string::npos ? "\"" + p.path + "\"" : p.path;
    const std::string prefix = path_field + "," + csv_field(kNames[size_t(best)]) + ",";
    REQUIRE(line.compare(0, prefix.size(), prefix) == 0);
    // The rest holds no quoted fields: the confidence, then the three probabilities.
    std::istringstream nums(line.substr(prefix.size()));
    std::vector<double> values;
    for (std::string cell; std::getline(nums, cell, ',');) values.push_back(std::strtod(cell.c_str(), nullptr));
    REQUIRE(values.size() == 4);
    CHECK(std::abs(values[0] - p.probs[size_t(best)]) < 1e-8);
    for (size_t k = 0; k < 3; ++k) CHECK(std::abs(values[k + 1] - p.probs[k]) < 1e-8);
  }
  CHECK_FALSE(std::getline(text, line));
}

TEST_CASE("classifier: CSV never leaves a half-written file; unnamed classes get class_<k> columns") {
  const Fixture& f = fixture();
  const Classifier& unnamed = *f.unnamed_classifier;
  const fs::path out = f.dir / "unnamed.csv";
  fs::remove(out);
  {
    PredictionCsv csv(out.string(), unnamed);
    csv.write(Prediction{"p.png", {0.25, 0.25, 0.5}});
  }  // dropped without commit: nothing under either name
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out.string() + ".tmp"));
  {
    PredictionCsv csv(out.string(), unnamed);
    csv.write(Prediction{"p.png", {0.25, 0.25, 0.5}});
    csv.commit();
  }
  CHECK(read_text(out) == "path,label,confidence,class_0,class_1,class_2\np.png,2,0.5,0.25,0.25,0.5\n");
  CHECK_ERROR_MENTIONS(PredictionCsv((f.dir / "no_dir" / "x.csv").string(), unnamed), "x.csv.tmp");
}

TEST_CASE("classifier: softmax is stable for large logits; top_k breaks ties by index; csv_field quotes") {
  const auto p = softmax_rows({1000.f, 1001.f, 1000.f, -5.f, 0.f, 5.f}, 2, 3);
  const double e = std::exp(1.0);
  CHECK(p[0][1] == doctest::Approx(e / (e + 2)));
  CHECK(p[0][0] == doctest::Approx(1 / (e + 2)));
  CHECK(p[1][2] == doctest::Approx(std::exp(5.0) / (std::exp(-5.0) + 1 + std::exp(5.0))));
  CHECK(top_k({0.25, 0.5, 0.25}, 3) == std::vector<int64_t>{1, 0, 2});
  CHECK(top_k({0.25, 0.5, 0.25}, 1) == std::vector<int64_t>{1});
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"x\"") == "\"say \"\"x\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
}
