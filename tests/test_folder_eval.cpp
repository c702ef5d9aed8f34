// classify --eval's core: scoring a checkpoint on a labelled folder agrees with direct
// predictions, the confusion matrix counts every image once, and a folder whose classes
// differ from the model's is refused with the difference listed.
#include <filesystem>

#include "datasets/image.h"
#include "models/checkpoint_meta.h"
#include "models/resnet.h"
#include "models/state_dict.h"
#include "test_util.h"
#include "train/folder_eval.h"

using namespace minidl;
using namespace minidl::testing;

namespace {
const std::string kSample = std::string(MINIDL_SOURCE_DIR) + "/datasets/eurosat_sample";

std::string save_model(const std::vector<std::string>& classes, const std::string& name) {
  Generator g(11);
  auto model = make_resnet("resnet18", int64_t(classes.size()), g);
  ModelMeta meta;
  meta.arch = "resnet18";
  meta.num_classes = int64_t(classes.size());
  meta.classes = classes;
  meta.img_size = 32;
  const std::string path = minidl::testing::unique_temp(name).string();
  save_weights_file(*model, path, to_metadata(meta));
  return path;
}
}  // namespace

TEST_CASE("evaluate_folder scores every chosen image once, matching direct predictions") {
  const ImageFolder folder = scan_image_folder(kSample);
  const std::string path = save_model(folder.classes, "minidl_folder_eval.safetensors");
  const Classifier classifier(path);
  check_folder_classes(classifier, folder);
  std::vector<int64_t> chosen;
  for (int64_t i = 0; i < int64_t(folder.samples.size()); i += 15) chosen.push_back(i);  // 20 images, 2 per class
  const FolderEval ev = evaluate_folder(classifier, folder, chosen, 8);
  REQUIRE(ev.records.size() == chosen.size());
  CHECK(ev.confusion.total() == int64_t(chosen.size()));
  CHECK(ev.skipped == 0);
  int64_t correct = 0;
  for (size_t r = 0; r < ev.records.size(); ++r) {
    const EvalRecord& rec = ev.records[r];
    CHECK(rec.index == chosen[r]);
    CHECK(rec.label == folder.samples[size_t(rec.index)].label);
    const auto probs = classifier.predict({decode_image_file(folder.samples[size_t(rec.index)].path)})[0];
    const int64_t argmax = std::max_element(probs.begin(), probs.end()) - probs.begin();
    CHECK(rec.score.predicted == argmax);
    CHECK(rec.score.confidence == doctest::Approx(probs[size_t(argmax)]).epsilon(1e-9));
    CHECK(rec.score.loss == doctest::Approx(-std::log(probs[size_t(rec.label)])).epsilon(1e-9));
    correct += rec.score.predicted == rec.label;
  }
  CHECK(ev.confusion.correct() == correct);
  std::filesystem::remove(path);
}

TEST_CASE("check_folder_classes refuses a folder whose classes differ from the model's") {
  const ImageFolder folder = scan_image_folder(kSample);
  std::vector<std::string> renamed = folder.classes;
  renamed[3] = "Motorway";
  const std::string path = save_model(renamed, "minidl_folder_eval_bad.safetensors");
  CHECK_ERROR_MENTIONS(check_folder_classes(Classifier(path), folder), "class 3", "Motorway", "Highway");
  std::vector<std::string> fewer(folder.classes.begin(), folder.classes.begin() + 4);
  const std::string path4 = save_model(fewer, "minidl_folder_eval_4.safetensors");
  CHECK_ERROR_MENTIONS(check_folder_classes(Classifier(path4), folder), "10 class folders", "4 classes");
  std::filesystem::remove(path);
  std::filesystem::remove(path4);
}
