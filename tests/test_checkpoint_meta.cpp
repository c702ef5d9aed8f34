// Checkpoint metadata: every field survives to_metadata -> meta_from_metadata and a real
// safetensors file; absent keys stay absent; malformed values are errors naming file and key.
#include <doctest/doctest.h>

#include <filesystem>

#include "models/checkpoint_meta.h"
#include "models/safetensors.h"
#include "tensor/factory.h"
#include "test_util.h"

using namespace minidl;
using Meta = std::map<std::string, std::string>;

namespace {

ModelMeta full_meta() {
  ModelMeta m;
  m.arch = "resnet18";
  m.num_classes = 3;
  m.classes = std::vector<std::string>{"Forest", "Sea, Lake", "say \"hi\" \xC3\xA9t\xC3\xA9"};  // comma, quotes, UTF-8
  m.img_size = 64;
  m.mean = std::array<float, 3>{0.485f, 0.456f, 0.406f};
  m.stddev = std::array<float, 3>{0.229f, 0.224f, 0.225f};
  return m;
}

void check_same(const ModelMeta& a, const ModelMeta& b) {
  CHECK(a.arch == b.arch);
  CHECK(a.num_classes == b.num_classes);
  CHECK(a.classes == b.classes);
  CHECK(a.img_size == b.img_size);
  CHECK(a.mean == b.mean);  // bit-exact: floats are written in their shortest exact form
  CHECK(a.stddev == b.stddev);
}

}  // namespace

TEST_CASE("checkpoint meta: every field round-trips through the metadata strings") {
  const ModelMeta m = full_meta();
  const Meta raw = to_metadata(m);
  CHECK(raw.at("arch") == "resnet18");
  CHECK(raw.at("num_classes") == "3");
  CHECK(raw.at("img_size") == "64");
  CHECK(raw.at("mean") == "[0.485,0.456,0.406]");
  CHECK(raw.at("std") == "[0.229,0.224,0.225]");
  check_same(meta_from_metadata(raw, "x.safetensors"), m);
}

TEST_CASE("checkpoint meta: round trip through a real safetensors file") {
  const std::string path = minidl::testing::unique_temp("test_meta.safetensors").string();
  const ModelMeta m = full_meta();
  save_safetensors(path, {{"w", ones({2})}}, to_metadata(m));
  check_same(meta_from_metadata(load_safetensors(path).metadata, path), m);
  std::filesystem::remove(path);
}

TEST_CASE("checkpoint meta: absent keys stay absent; unknown keys are ignored") {
  const ModelMeta none = meta_from_metadata({}, "f");
  CHECK_FALSE(none.arch);
  CHECK_FALSE(none.num_classes);
  CHECK_FALSE(none.classes);
  CHECK_FALSE(none.img_size);
  CHECK_FALSE(none.mean);
  CHECK_FALSE(none.stddev);
  CHECK(to_metadata(ModelMeta{}).empty());

  // What scripts/convert_torchvision.py writes.
  const ModelMeta conv = meta_from_metadata({{"format", "pt"}, {"source", "r.pth"}, {"arch", "resnet50"},
                                             {"num_classes", "1000"}}, "f");
  CHECK(conv.arch == "resnet50");
  CHECK(conv.num_classes == 1000);
  CHECK_FALSE(conv.classes);
  CHECK_FALSE(conv.img_size);

  ModelMeta partial;
  partial.img_size = 32;
  CHECK(to_metadata(partial) == Meta{{"img_size", "32"}});
}

TEST_CASE("checkpoint meta: malformed values are errors naming the file and the key") {
  auto bad = [](const std::string& key, const std::string& value) { return meta_from_metadata({{key, value}}, "ck.safetensors"); };
  CHECK_ERROR_MENTIONS(bad("num_classes", "ten"), "ck.safetensors", "'num_classes'", "ten");
  CHECK_ERROR_MENTIONS(bad("num_classes", "0"), "ck.safetensors", "'num_classes'", "positive");
  CHECK_ERROR_MENTIONS(bad("num_classes", "-3"), "'num_classes'");
  CHECK_ERROR_MENTIONS(bad("num_classes", "10 "), "'num_classes'");
  CHECK_ERROR_MENTIONS(bad("num_classes", "99999999999999999999999"), "'num_classes'");
  CHECK_ERROR_MENTIONS(bad("img_size", "64px"), "ck.safetensors", "'img_size'");
  CHECK_ERROR_MENTIONS(bad("img_size", "3000000000"), "'img_size'");  // does not fit an int
  CHECK_ERROR_MENTIONS(bad("arch", ""), "'arch'", "empty");
  CHECK_ERROR_MENTIONS(bad("classes", "Forest,River"), "ck.safetensors", "'classes'", "JSON");
  CHECK_ERROR_MENTIONS(bad("classes", "{\"a\": 1}"), "'classes'", "array of strings");
  CHECK_ERROR_MENTIONS(bad("classes", "[\"a\", 2]"), "'classes'", "entry 1");
  CHECK_ERROR_MENTIONS(bad("classes", "[]"), "'classes'", "empty");
  CHECK_ERROR_MENTIONS(bad("classes", "[\"a\", \"\"]"), "'classes'", "name 1 is empty");
  CHECK_ERROR_MENTIONS(bad("mean", "[0.5, 0.5]"), "ck.safetensors", "'mean'", "3 numbers");
  CHECK_ERROR_MENTIONS(bad("mean", "[0.5, \"x\", 0.5]"), "'mean'", "entry 1");
  CHECK_ERROR_MENTIONS(bad("mean", "[0.5, 1e300, 0.5]"), "'mean'", "float");
  CHECK_ERROR_MENTIONS(bad("mean", "0.5"), "'mean'");
  CHECK_ERROR_MENTIONS(bad("std", "[0.2, 0, 0.2]"), "ck.safetensors", "'std'", "positive");
  CHECK_ERROR_MENTIONS(bad("std", "[0.2, -1, 0.2]"), "'std'");

  // Keys that disagree with each other.
  CHECK_ERROR_MENTIONS(meta_from_metadata({{"num_classes", "3"}, {"classes", "[\"a\",\"b\"]"}}, "ck.safetensors"),
                       "ck.safetensors", "'classes'", "2 names", "num_classes is 3");
}

TEST_CASE("checkpoint meta: to_metadata refuses what could not be read back") {
  ModelMeta m;
  m.num_classes = 2;
  m.classes = std::vector<std::string>{"a", "b", "c"};
  CHECK_ERROR_MENTIONS(to_metadata(m), "'classes'", "3 names");
  ModelMeta s;
  s.stddev = std::array<float, 3>{1.f, 0.f, 1.f};
  CHECK_ERROR_MENTIONS(to_metadata(s), "'std'");
  ModelMeta z;
  z.img_size = 0;
  CHECK_ERROR_MENTIONS(to_metadata(z), "'img_size'");
  ModelMeta u;
  u.classes = std::vector<std::string>{"bad \xFF utf8"};
  CHECK_ERROR_MENTIONS(to_metadata(u), "'classes'");
}
