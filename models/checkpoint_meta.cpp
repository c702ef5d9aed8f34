#include "models/checkpoint_meta.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace minidl {

namespace {

using Json = nlohmann::json;

// The one shape every complaint takes: which file, which key, what was wrong.
[[noreturn]] void bad_key(const std::string& file, const std::string& key, const std::string& what) {
  throw Error(file + ": checkpoint metadata '" + key + "': " + what);
}

// A whole string as a base-10 integer (no sign, spaces or trailing text), or nothing.
template <class Int>
std::optional<Int> parse_int(const std::string& s) {
  Int v{};
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end || s.empty()) return std::nullopt;
  return v;
}

template <class Int>
Int positive_int(const std::string& file, const std::string& key, const std::string& text) {
  std::optional<Int> v = parse_int<Int>(text);
  if (!v || *v <= 0) bad_key(file, key, "expected a positive integer, got '" + text + "'");
  return *v;
}

Json parse_json(const std::string& file, const std::string& key, const std::string& text) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    bad_key(file, key, "not valid JSON ('" + text + "'): " + e.what());
  }
}

std::vector<std::string> string_array(const std::string& file, const std::string& key, const std::string& text) {
  Json j = parse_json(file, key, text);
  if (!j.is_array()) bad_key(file, key, "expected a JSON array of strings, got '" + text + "'");
  std::vector<std::string> out;
  for (const Json& e : j) {
    if (!e.is_string()) bad_key(file, key, "entry " + std::to_string(out.size()) + " is not a string: " + e.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::array<float, 3> three_numbers(const std::string& file, const std::string& key, const std::string& text) {
  Json j = parse_json(file, key, text);
  if (!j.is_array() || j.size() != 3) bad_key(file, key, "expected a JSON array of 3 numbers (R, G, B), got '" + text + "'");
  std::array<float, 3> out{};
  for (size_t c = 0; c < 3; ++c) {
    if (!j[c].is_number()) bad_key(file, key, "entry " + std::to_string(c) + " is not a number: " + j[c].dump());
    // Range-checked first: converting an out-of-range double to float is undefined.
    const double d = j[c].get<double>();
    if (!(std::abs(d) <= double(std::numeric_limits<float>::max())))
      bad_key(file, key, "entry " + std::to_string(c) + " does not fit a float: " + j[c].dump());
    out[c] = float(d);
  }
  return out;
}

// Shortest text that reads back as the same float ("0.485", not "0.48500001430511475").
std::string float_text(float v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, p);
}

std::string three_numbers_text(const std::array<float, 3>& v) {
  return "[" + float_text(v[0]) + "," + float_text(v[1]) + "," + float_text(v[2]) + "]";
}

// The rules both directions share, so that to_metadata never writes what
// meta_from_metadata would refuse.
void validate(const ModelMeta& m, const std::string& file) {
  if (m.arch && m.arch->empty()) bad_key(file, "arch", "is empty");
  if (m.num_classes && *m.num_classes <= 0)
    bad_key(file, "num_classes", "must be positive, got " + std::to_string(*m.num_classes));
  if (m.img_size && *m.img_size <= 0) bad_key(file, "img_size", "must be positive, got " + std::to_string(*m.img_size));
  if (m.classes) {
    if (m.classes->empty()) bad_key(file, "classes", "is an empty list");
    for (size_t i = 0; i < m.classes->size(); ++i)
      if ((*m.classes)[i].empty()) bad_key(file, "classes", "name " + std::to_string(i) + " is empty");
    if (m.num_classes && int64_t(m.classes->size()) != *m.num_classes)
      bad_key(file, "classes", "lists " + std::to_string(m.classes->size()) + " names, but num_classes is " +
                                   std::to_string(*m.num_classes));
  }
  for (const auto& [key, v] : {std::pair{"mean", m.mean}, std::pair{"std", m.stddev}}) {
    if (!v) continue;
    for (float x : *v)
      if (!std::isfinite(x)) bad_key(file, key, "has a non-finite entry: " + three_numbers_text(*v));
  }
  if (m.stddev)
    for (float x : *m.stddev)
      if (!(x > 0)) bad_key(file, "std", "entries must be positive, got " + three_numbers_text(*m.stddev));
}

}  // namespace

std::map<std::string, std::string> to_metadata(const ModelMeta& meta) {
  validate(meta, "to_metadata");
  std::map<std::string, std::string> out;
  if (meta.arch) out["arch"] = *meta.arch;
  if (meta.num_classes) out["num_classes"] = std::to_string(*meta.num_classes);
  if (meta.classes) {
    try {
      out["classes"] = Json(*meta.classes).dump();
    } catch (const Json::exception& e) {  // a name that is not valid UTF-8
      bad_key("to_metadata", "classes", e.what());
    }
  }
  if (meta.img_size) out["img_size"] = std::to_string(*meta.img_size);
  if (meta.mean) out["mean"] = three_numbers_text(*meta.mean);
  if (meta.stddev) out["std"] = three_numbers_text(*meta.stddev);
  return out;
}

ModelMeta meta_from_metadata(const std::map<std::string, std::string>& metadata, const std::string& file_for_errors) {
  const std::string& file = file_for_errors;
  auto get = [&](const char* key) -> const std::string* {
    auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
  };
  ModelMeta m;
  if (auto s = get("arch")) m.arch = *s;
  if (auto s = get("num_classes")) m.num_classes = positive_int<int64_t>(file, "num_classes", *s);
  if (auto s = get("classes")) m.classes = string_array(file, "classes", *s);
  if (auto s = get("img_size")) m.img_size = positive_int<int>(file, "img_size", *s);
  if (auto s = get("mean")) m.mean = three_numbers(file, "mean", *s);
  if (auto s = get("std")) m.stddev = three_numbers(file, "std", *s);
  validate(m, file);
  return m;
}

}  // namespace minidl
