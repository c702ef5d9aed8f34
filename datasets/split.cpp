#include "datasets/split.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "tensor/error.h"
#include "tensor/random.h"

namespace minidl {

namespace {


const char* const kPartNames[3] = {"train", "val", "test"};

std::vector<int64_t>& part(Split& s, int k) { return k == 0 ? s.train : k == 1 ? s.val : s.test; }
const std::vector<int64_t>& part(const Split& s, int k) { return k == 0 ? s.train : k == 1 ? s.val : s.test; }

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return "[" + out + "]";
}

}  // namespace

PartSizes split_sizes(int64_t n, double train_frac, double val_frac) {
  MINIDL_CHECK(n >= 0, "split_sizes: negative class size ", n);
  int64_t sizes[3];
  sizes[0] = std::min<int64_t>(std::llround(double(n) * train_frac), n);
  sizes[1] = std::min<int64_t>(std::llround(double(n) * val_frac), n - sizes[0]);
  sizes[2] = n - sizes[0] - sizes[1];
  // A part the caller asked for must not come out empty when there is enough to go round.
  const bool wanted[3] = {train_frac > 0, val_frac > 0, 1.0 - train_frac - val_frac > 1e-9};
  if (n >= 3) {
    for (int k = 0; k < 3; ++k) {
      if (!wanted[k] || sizes[k] > 0) continue;
      const int largest = int(std::max_element(sizes, sizes + 3) - sizes);  // first of equals
      --sizes[largest];
      ++sizes[k];
    }
  }
  return {sizes[0], sizes[1], sizes[2]};
}

Split stratified_split(const ImageFolder& folder, double train_frac, double val_frac, uint64_t seed) {
  MINIDL_CHECK(train_frac > 0 && val_frac >= 0 && train_frac + val_frac <= 1.0 + 1e-9,
               "stratified_split: need 0 < train_frac, 0 <= val_frac and train_frac + val_frac <= 1; got ",
               train_frac, " and ", val_frac);
  std::vector<std::vector<int64_t>> by_class(folder.classes.size());
  for (size_t i = 0; i < folder.samples.size(); ++i) {
    const int64_t label = folder.samples[i].label;
    MINIDL_CHECK(label >= 0 && label < int64_t(by_class.size()), "stratified_split: sample '",
                 folder.samples[i].path, "' has label ", label, " outside [0, ", by_class.size(), ")");
    by_class[size_t(label)].push_back(int64_t(i));
  }

  Split split;
  for (size_t label = 0; label < by_class.size(); ++label) {
    std::vector<int64_t>& idx = by_class[label];
    // Each class its own stream, so adding a class leaves the others' draws unchanged.
    Generator gen(mix64(seed ^ mix64(0x5350'4c49'5400ull + label)));
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[gen.randint(i)]);
    const PartSizes sz = split_sizes(int64_t(idx.size()), train_frac, val_frac);
    const auto a = idx.begin(), b = a + sz.train, c = b + sz.val;
    split.train.insert(split.train.end(), a, b);
    split.val.insert(split.val.end(), b, c);
    split.test.insert(split.test.end(), c, idx.end());
  }
  for (int k = 0; k < 3; ++k) std::sort(part(split, k).begin(), part(split, k).end());
  return split;
}

void write_split_file(const std::string& path, const ImageFolder& folder, const Split& split) {
  using ojson = nlohmann::ordered_json;
  std::ostringstream os;
  os << "{\n  \"format\": \"minidl-split\",\n  \"version\": 1,\n  \"classes\": " << ojson(folder.classes).dump();
  for (int k = 0; k < 3; ++k) {
    os << ",\n  \"" << kPartNames[k] << "\": [";
    const std::vector<int64_t>& idx = part(split, k);
    for (size_t i = 0; i < idx.size(); ++i) {
      MINIDL_CHECK(idx[i] >= 0 && idx[i] < int64_t(folder.samples.size()), "write_split_file '", path, "': ",
                   kPartNames[k], " index ", idx[i], " is outside the folder's ", folder.samples.size(), " samples");
      const ojson entry = {{"path", folder.relative_path(idx[i])}, {"label", folder.samples[size_t(idx[i])].label}};
      os << (i ? ",\n    " : "\n    ") << entry.dump();
    }
    os << (idx.empty() ? "]" : "\n  ]");
  }
  os << "\n}\n";

  // Write beside the target, then rename: readers see the old file or the whole new one.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MINIDL_CHECK(f, "write_split_file: cannot create '", tmp, "'");
    f << os.str();
    f.close();
    MINIDL_CHECK(f, "write_split_file: writing '", tmp, "' failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  MINIDL_CHECK(!ec, "write_split_file: cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

Split read_split_file(const std::string& path, const ImageFolder& folder) {
  const std::string where = "split file '" + path + "'";
  std::ifstream f(path, std::ios::binary);
  MINIDL_CHECK(f, where, ": cannot open it");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": not valid JSON: " + e.what());
  }
  MINIDL_CHECK(j.is_object() && j.value("format", "") == "minidl-split", where,
               ": not a minidl split (expected \"format\": \"minidl-split\")");
  MINIDL_CHECK(j.value("version", 0) == 1, where, ": unsupported version ", j.value("version", 0), " (expected 1)");

  std::vector<std::string> classes;
  try {
    classes = j.at("classes").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": \"classes\" must be a list of class names");
  }
  MINIDL_CHECK(classes == folder.classes, where, ": its classes ", join_names(classes),
               " differ from the classes found in '", folder.root, "' ", join_names(folder.classes),
               " (a split belongs to one dataset; labels would not match)");

  std::unordered_map<std::string, int64_t> by_path;
  by_path.reserve(folder.samples.size());
  for (size_t i = 0; i < folder.samples.size(); ++i) by_path.emplace(folder.relative_path(int64_t(i)), int64_t(i));

  Split split;
  std::unordered_map<int64_t, int> listed_in;  // sample -> part
  std::vector<std::string> missing;
  size_t missing_count = 0;
  for (int k = 0; k < 3; ++k) {
    const auto it = j.find(kPartNames[k]);
    MINIDL_CHECK(it != j.end() && it->is_array(), where, ": \"", kPartNames[k], "\" must be a list");
    for (const nlohmann::json& e : *it) {
      MINIDL_CHECK(e.is_object() && e.contains("path") && e["path"].is_string() && e.contains("label") &&
                       e["label"].is_number_integer(),
                   where, ": each \"", kPartNames[k], "\" entry must be {\"path\": string, \"label\": integer}, got ",
                   e.dump());
      const std::string rel = e["path"].get<std::string>();
      const auto found = by_path.find(rel);
      if (found == by_path.end()) {
        if (missing.size() < 5) missing.push_back(rel);
        ++missing_count;
        continue;
      }
      const int64_t idx = found->second, label = e["label"].get<int64_t>();
      MINIDL_CHECK(label == folder.samples[size_t(idx)].label, where, ": '", rel, "' has label ", label,
                   " but lies in class folder ", folder.classes[size_t(folder.samples[size_t(idx)].label)], " (label ",
                   folder.samples[size_t(idx)].label, ")");
      const auto [prev, fresh] = listed_in.emplace(idx, k);
      MINIDL_CHECK(fresh, where, ": '", rel, "' is listed twice (in ", kPartNames[prev->second], " and in ",
                   kPartNames[k], "); the parts must be disjoint");
      part(split, k).push_back(idx);
    }
  }
  MINIDL_CHECK(missing.empty(), where, ": ", missing_count, " listed file(s) are not in '", folder.root,
               "' (first: ", join_names(missing), ")");
  for (int k = 0; k < 3; ++k) std::sort(part(split, k).begin(), part(split, k).end());
  return split;
}

}  // namespace minidl
