// safetensors reader/writer: round trips, half/bfloat16 decoding, and every kind of corrupt
// file the reader must refuse with an error naming the file (and the tensor, where one is
// at fault).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "models/safetensors.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

std::string temp_path(const std::string& name) {
  return minidl::testing::unique_temp("test_" + name).string();
}

// Writes [u64 len][header][data] exactly as given, for building broken files.
void write_raw(const std::string& path, const std::string& header, const std::string& data, int64_t len_override = -1) {
  std::ofstream f(path, std::ios::binary);
  uint64_t len = len_override >= 0 ? uint64_t(len_override) : header.size();
  f.write(reinterpret_cast<const char*>(&len), 8);
  f << header << data;
}

std::string bytes_of(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, order, shapes, dtypes, values and metadata") {
  Generator g(3);
  Tensor a = randn({3, 5, 7}, DType::Float32, g);
  Tensor b = randn({4}, DType::Float64, g);
  Tensor c = full({}, 42, DType::Int64);                     // 0-dim, like num_batches_tracked
  Tensor d = randn({6, 5}, DType::Float32, g).transpose(0, 1);  // non-contiguous input
  const std::string path = temp_path("roundtrip.safetensors");
  save_safetensors(path, {{"layer1.0.conv1.weight", a}, {"b", b}, {"bn1.num_batches_tracked", c}, {"d", d}},
                   {{"arch", "resnet50"}, {"classes", "a,b"}});
  SafetensorsContents r = load_safetensors(path);
  REQUIRE(r.tensors.size() == 4);
  CHECK(r.tensors[0].name == "layer1.0.conv1.weight");
  CHECK(r.tensors[0].file_dtype == "F32");
  CHECK(max_rel_error(r.find("layer1.0.conv1.weight"), a) == 0.0);
  CHECK(r.find("b").dtype() == DType::Float64);
  CHECK(max_rel_error(r.find("b"), b) == 0.0);
  CHECK(r.find("bn1.num_batches_tracked").dtype() == DType::Int64);
  CHECK(r.find("bn1.num_batches_tracked").shape().empty());
  CHECK(r.find("bn1.num_batches_tracked").item() == 42);
  CHECK(r.find("d").shape() == Shape{5, 6});
  CHECK(max_rel_error(r.find("d"), d.contiguous()) == 0.0);
  CHECK(r.metadata.at("arch") == "resnet50");
  CHECK(r.metadata.at("classes") == "a,b");
  CHECK_FALSE(r.find("missing").defined());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::remove(path);
}

TEST_CASE("half and bfloat16 decode exactly") {
  CHECK(half_to_float(0x3c00) == 1.0f);
  CHECK(half_to_float(0xc000) == -2.0f);
  CHECK(half_to_float(0x7bff) == 65504.0f);              // largest normal half
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(half_to_float(0x0200) == std::ldexp(1.0f, -15));  // a mid subnormal
  CHECK(std::isinf(half_to_float(0x7c00)));
  CHECK(std::isnan(half_to_float(0x7e00)));
  CHECK(std::signbit(half_to_float(0x8000)));
  CHECK(bfloat16_to_float(0x3f80) == 1.0f);
  CHECK(bfloat16_to_float(0xc040) == -3.0f);
  CHECK(bfloat16_to_float(0x3fc0) == 1.5f);

  const std::string path = temp_path("half.safetensors");
  const uint16_t h[2] = {0x3c00, 0xb800}, bf[2] = {0x4000, 0x3f00};  // 1, -0.5 ; 2, 0.5
  std::string data(reinterpret_cast<const char*>(h), 4);
  data += std::string(reinterpret_cast<const char*>(bf), 4);
  write_raw(path,
            R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}})",
            data);
  SafetensorsContents r = load_safetensors(path);
  CHECK(r.find("h").dtype() == DType::Float32);
  CHECK(r.find("h").to_vector<float>() == std::vector<float>{1.0f, -0.5f});
  CHECK(r.find("b").to_vector<float>() == std::vector<float>{2.0f, 0.5f});
  std::filesystem::remove(path);
}

TEST_CASE("corrupt safetensors files are clear errors naming the file and the tensor") {
  const std::string p = temp_path("bad.safetensors");
  const std::string ok_entry = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string two = bytes_of({1.f, 2.f});

  SUBCASE("missing file") { CHECK_ERROR_MENTIONS(load_safetensors(p + ".nope"), "nope", "no such file"); }
  SUBCASE("shorter than the length field") {
    std::ofstream(p, std::ios::binary) << "abc";
    CHECK_ERROR_MENTIONS(load_safetensors(p), p.c_str(), "too short");
  }
  SUBCASE("header length past the end (truncated)") {
    write_raw(p, ok_entry, two, 5000);
    CHECK_ERROR_MENTIONS(load_safetensors(p), p.c_str(), "runs past the end");
  }
  SUBCASE("absurd header length") {
    write_raw(p, ok_entry, two, int64_t(1) << 40);
    CHECK_ERROR_MENTIONS(load_safetensors(p), p.c_str(), "cap");
  }
  SUBCASE("not JSON") {
    write_raw(p, "{\"w\": [1, 2", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), p.c_str(), "not valid JSON");
  }
  SUBCASE("not an object") {
    write_raw(p, "[1,2,3]", "");
    CHECK_ERROR_MENTIONS(load_safetensors(p), p.c_str(), "start with '{'");
  }
  SUBCASE("unknown dtype") {
    write_raw(p, R"({"w":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})", "ab");
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'w'", "I8");
  }
  SUBCASE("byte count does not match dtype x shape") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'w'", "needs 12");
  }
  SUBCASE("offsets outside the data section") {
    write_raw(p, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'w'", "outside the data section");
  }
  SUBCASE("overlapping tensors") {
    write_raw(p,
              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
              two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "overlaps");
  }
  SUBCASE("a hole in the data section") {
    write_raw(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'a'", "hole");
  }
  SUBCASE("trailing bytes") {
    write_raw(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "trailing");
  }
  SUBCASE("negative or zero sizes, bad offsets") {
    write_raw(p, R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'a'", "negative");
    write_raw(p, R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", "");
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'a'", "zero-sized");
    write_raw(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'a'", "data_offsets");
    write_raw(p, R"({"a":{"dtype":"F32","shape":[2]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "'a'", "data_offsets");
  }
  SUBCASE("metadata that is not string to string") {
    write_raw(p, R"({"__metadata__":{"k":3},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two);
    CHECK_ERROR_MENTIONS(load_safetensors(p), "__metadata__", "'k'");
  }
  std::filesystem::remove(p);
}

TEST_CASE("save_safetensors refuses bad input and never leaves a partial file") {
  const std::string p = temp_path("save_bad.safetensors");
  Tensor t = ones({2});
  CHECK_ERROR_MENTIONS(save_safetensors(p, {{"a", t}, {"a", t}}), "'a'", "twice");
  CHECK_ERROR_MENTIONS(save_safetensors(p, {{"", t}}), "invalid tensor name");
  CHECK_ERROR_MENTIONS(save_safetensors(p, {{"u", Tensor()}}), "'u'", "undefined");
  CHECK_ERROR_MENTIONS(save_safetensors("/nonexistent-dir/x.safetensors", {{"a", t}}), "cannot create");
  CHECK_FALSE(std::filesystem::exists(p));
}
