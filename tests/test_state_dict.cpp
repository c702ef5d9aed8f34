// Strict state-dict loading: every missing key, unexpected key and shape mismatch is
// reported together and nothing changes; non-strict loads what matches and reports the
// rest; the fine-tuning head swap skips exactly fc.*; bad files are clear errors.
#include <filesystem>
#include <fstream>

#include "models/resnet.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

std::string temp_path(const std::string& name) {
  return minidl::testing::unique_temp("sd_" + name).string();
}

// A copy of every state-dict tensor, to detect any change to the model.
NamedTensors snapshot(const Module& m) {
  NamedTensors out;
  for (const auto& [k, t] : m.state_dict()) out.emplace_back(k, t.detach().clone());
  return out;
}

bool same_values(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || a[i].second.to_vector<double>() != b[i].second.to_vector<double>()) return false;
  return true;
}

}  // namespace

TEST_CASE("a model's own state dict loads back strictly, values and int64 counters included") {
  Generator g1(1), g2(2);
  auto a = make_resnet("resnet18", 7, g1), b = make_resnet("resnet18", 7, g2);
  a->train();
  {
    NoGradGuard ng;
    (*a)(randn({2, 3, 32, 32}, DType::Float32, g1));  // moves running stats and counters
  }
  const std::string path = temp_path("rt.safetensors");
  save_weights_file(*a, path, {{"arch", "resnet18"}});
  std::map<std::string, std::string> meta;
  LoadReport r = load_weights_file(*b, path, {}, &meta);
  CHECK(r.complete());
  CHECK(r.loaded.size() == a->state_dict().size());
  CHECK(meta.at("arch") == "resnet18");
  CHECK(same_values(snapshot(*a), snapshot(*b)));
  CHECK(b->bn1->num_batches_tracked.item() == 1);
  // Loading writes in place: the layer's own handle sees the new values.
  CHECK(b->conv1->weight.to_vector<float>() == a->conv1->weight.to_vector<float>());
  std::filesystem::remove(path);
}

TEST_CASE("strict loading lists every problem at once and changes nothing") {
  Generator g(3);
  auto model = make_resnet("resnet18", 10, g);
  NamedTensors src = snapshot(*model);
  // One missing key, one unexpected key, one wrong shape, one wrong dtype class.
  src.erase(std::find_if(src.begin(), src.end(), [](auto& e) { return e.first == "layer2.0.bn1.running_var"; }));
  src.emplace_back("layer9.0.conv1.weight", zeros({3}));
  for (auto& [k, t] : src) {
    if (k == "fc.weight") t = zeros({5, 512});
    if (k == "bn1.num_batches_tracked") t = zeros({});
  }
  // Perturb a loadable tensor: if anything were copied before the check, we would see it.
  for (auto& [k, t] : src)
    if (k == "conv1.weight") t = full(t.shape(), 7.0);
  const NamedTensors before = snapshot(*model);
  std::string msg;
  try {
    load_state_dict(*model, src);
  } catch (const Error& e) {
    msg = e.what();
  }
  REQUIRE(!msg.empty());
  CHECK(msg.find("nothing was loaded") != std::string::npos);
  CHECK(msg.find("missing from source: layer2.0.bn1.running_var [128]") != std::string::npos);
  CHECK(msg.find("unexpected in source: layer9.0.conv1.weight [3]") != std::string::npos);
  CHECK(msg.find("fc.weight: model [10, 512] float32, source [5, 512] float32") != std::string::npos);
  CHECK(msg.find("bn1.num_batches_tracked: model [] int64, source [] float32") != std::string::npos);
  CHECK(same_values(before, snapshot(*model)));
}

TEST_CASE("non-strict loading copies what matches and reports the rest") {
  Generator g(4);
  auto model = make_resnet("resnet18", 10, g);
  NamedTensors src = snapshot(*model);
  for (auto& [k, t] : src) {
    if (k == "conv1.weight") t = full(t.shape(), 0.5);
    if (k == "fc.bias") t = zeros({3});
  }
  src.emplace_back("extra", ones({2}));
  LoadOptions opt;
  opt.strict = false;
  LoadReport r = load_state_dict(*model, src, opt);
  CHECK_FALSE(r.complete());
  CHECK(r.unexpected == std::vector<std::string>{"extra [2]"});
  REQUIRE(r.mismatched.size() == 1);
  CHECK(r.mismatched[0].find("fc.bias") == 0);
  CHECK(model->conv1->weight.at({0, 0, 0, 0}) == 0.5);
  CHECK(r.summary().find("1 unexpected") != std::string::npos);
}

TEST_CASE("a float64 source loads into a float32 model (converted), a duplicate key is an error") {
  Generator g(5);
  auto model = make_resnet("resnet18", 4, g);
  NamedTensors src;
  for (const auto& [k, t] : model->state_dict()) src.emplace_back(k, t.dtype() == DType::Int64 ? t : t.to(DType::Float64) * 2.0);
  load_state_dict(*model, src);
  CHECK(model->fc->bias.dtype() == DType::Float32);
  src.emplace_back(src.front());
  CHECK_ERROR_MENTIONS(load_state_dict(*model, src), "appears twice", src.front().first.c_str());
}

TEST_CASE("load_pretrained: an ImageNet head (1000 classes) is skipped for a 10-class model, and said so") {
  Generator g1(6), g2(7);
  auto imagenet = make_resnet("resnet18", 1000, g1);
  const std::string path = temp_path("imagenet.safetensors");
  save_weights_file(*imagenet, path);
  auto model = make_resnet("resnet18", 10, g2);
  const std::vector<float> fresh_fc = model->fc->weight.to_vector<float>();
  std::string notice;
  LoadReport r = load_pretrained(*model, path, "fc.", &notice);
  CHECK(r.loaded.size() == imagenet->state_dict().size() - 2);
  CHECK(r.skipped.size() == 4);  // fc.weight, fc.bias on both sides
  CHECK(notice.find("replaced the classifier head 'fc.*'") != std::string::npos);
  CHECK(notice.find("fc.weight: file [1000, 512], model [10, 512]") != std::string::npos);
  CHECK(model->fc->weight.to_vector<float>() == fresh_fc);                                  // head kept
  CHECK(model->conv1->weight.to_vector<float>() == imagenet->conv1->weight.to_vector<float>());  // backbone loaded

  // Same number of classes: everything loads, the notice says all.
  auto same = make_resnet("resnet18", 1000, g2);
  load_pretrained(*same, path, "fc.", &notice);
  CHECK(notice.find("loaded all") == 0);
  CHECK(same->fc->bias.to_vector<float>() == imagenet->fc->bias.to_vector<float>());

  // A checkpoint of another architecture is still a strict error outside the head.
  auto r50 = make_resnet("resnet50", 10, g2);
  CHECK_ERROR_MENTIONS(load_pretrained(*r50, path, "fc.", nullptr), path.c_str(), "missing from source", "layer1.0.conv3.weight");
  std::filesystem::remove(path);
}

TEST_CASE("truncated or corrupt weights files are clear errors naming the file, and leave the model as it was") {
  Generator g(8);
  auto model = make_resnet("resnet18", 10, g);
  const std::string good = temp_path("good.safetensors"), bad = temp_path("truncated.safetensors");
  save_weights_file(*model, good);
  const auto size = std::filesystem::file_size(good);
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes(size / 2, '\0');
    in.read(bytes.data(), std::streamsize(bytes.size()));
    std::ofstream(bad, std::ios::binary) << bytes;
  }
  auto other = make_resnet("resnet18", 10, g);
  const NamedTensors before = snapshot(*other);
  CHECK_ERROR_MENTIONS(load_weights_file(*other, bad), bad.c_str());
  CHECK_ERROR_MENTIONS(load_weights_file(*other, temp_path("absent.safetensors")), "absent.safetensors", "no such file");
  CHECK(same_values(before, snapshot(*other)));
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

TEST_CASE("resnet factories: parameter counts match torchvision, unknown names are errors") {
  auto count = [](const Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  Generator g(9);
  // torchvision's published parameter counts for 1000 classes.
  CHECK(count(*make_resnet("resnet18", 1000, g)) == 11689512);
  CHECK(count(*make_resnet("resnet50", 1000, g)) == 25557032);
  CHECK_ERROR_MENTIONS(make_resnet("resnet42", 10, g), "resnet42", "resnet50");
  CHECK_ERROR_MENTIONS(make_resnet("resnet18", 0, g), "num_classes");
  auto m = make_resnet("resnet18", 10, g);
  CHECK_ERROR_MENTIONS((*m)(zeros({1, 1, 32, 32})), "resnet18", "[1, 1, 32, 32]");
}
