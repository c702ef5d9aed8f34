#include "models/classifier.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "datasets/transforms.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "tensor/error.h"

namespace minidl {

namespace {

// The class count when neither the caller nor the metadata gives one: the classifier
// head's output rows, which the weights fix anyway.
int64_t classes_from_head(const SafetensorsContents& contents, const std::string& path) {
  Tensor fc = contents.find("fc.weight");
  MINIDL_CHECK(fc.defined(), path, ": cannot tell the number of classes: no 'num_classes' metadata and no fc.weight ",
               "tensor (pass --num-classes)");
  MINIDL_CHECK(fc.dim() == 2, path, ": fc.weight should be 2-D [classes, features], but is ", shape_str(fc.shape()));
  return fc.size(0);
}

// Strict loading from the contents already in memory (the file is read once). A mismatch
// usually means a wrong architecture or class count, so the error says which model was
// built and where its settings came from, before the list of keys.
void load_strict(Module& model, const SafetensorsContents& contents, const std::string& path,
                 const std::string& built) {
  NamedTensors source;
  for (const auto& e : contents.tensors) source.emplace_back(e.name, e.tensor);
  try {
    load_state_dict(model, source);
  } catch (const Error& e) {
    throw Error(path + ": the weights do not fit " + built + ": " + e.what());
  }
}

std::string trim(const std::string& s) {
  const char* blanks = " \t\r\n";
  const size_t b = s.find_first_not_of(blanks);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(blanks) - b + 1);
}

// %.9g: nine significant digits, so a probability read back differs by < 1e-8 relative.
std::string prob_text(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", p);
  return buf;
}

}  // namespace

Classifier::Classifier(const std::string& model_path, const ClassifierOptions& options) {
  MINIDL_CHECK(options.num_classes >= 0, "classifier: num_classes must be positive, got ", options.num_classes);
  MINIDL_CHECK(options.img_size >= 0, "classifier: img_size must be positive, got ", options.img_size);
  const SafetensorsContents contents = load_safetensors(model_path);
  const ModelMeta meta = meta_from_metadata(contents.metadata, model_path);

  const char* arch_from = !options.arch.empty() ? "given" : meta.arch ? "from the checkpoint's metadata" : "the default";
  arch_ = !options.arch.empty() ? options.arch : meta.arch.value_or("resnet50");
  const char* classes_from = options.num_classes > 0 ? "given" : meta.num_classes ? "from the checkpoint's metadata"
                                                                                   : "from fc.weight";
  num_classes_ = options.num_classes > 0 ? options.num_classes
                 : meta.num_classes    ? *meta.num_classes
                                       : classes_from_head(contents, model_path);
  img_size_ = options.img_size > 0 ? options.img_size : meta.img_size.value_or(kDefaultImgSize);
  MINIDL_CHECK(img_size_ >= kMinImgSize && img_size_ <= kMaxImgSize, model_path, ": input size ", img_size_,
               " is outside ", kMinImgSize, "..", kMaxImgSize);
  mean_ = meta.mean.value_or(std::array<float, 3>{kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]});
  stddev_ = meta.stddev.value_or(std::array<float, 3>{kImageNetStd[0], kImageNetStd[1], kImageNetStd[2]});

  if (!options.classes_file.empty()) {
    names_ = read_class_names(options.classes_file);
    names_source_ = options.classes_file;
  } else if (meta.classes) {
    names_ = *meta.classes;
    names_source_ = "checkpoint";
  }
  const std::string& where = names_source_ == "checkpoint" ? model_path + " (metadata 'classes')" : names_source_;
  MINIDL_CHECK(names_.empty() || int64_t(names_.size()) == num_classes_, where, ": lists ", names_.size(),
               " class names, but the model has ", num_classes_, " classes");

  // A private generator: the random initialisation is overwritten by the load, and drawing
  // it from the default generator would disturb the caller's random stream.
  Generator init(0);
  model_ = make_resnet(arch_, num_classes_, init);
  load_strict(*model_, contents, model_path,
              detail::concat(arch_, " (", arch_from, ") with ", num_classes_, " classes (", classes_from, ")"));
  model_->eval();
  device_ = options.device;
  model_->to(device_);
}

std::string Classifier::class_name(int64_t k) const {
  return names_.empty() ? std::to_string(k) : names_[size_t(k)];
}

std::string Classifier::column_name(int64_t k) const {
  return names_.empty() ? "class_" + std::to_string(k) : names_[size_t(k)];
}

Image Classifier::fit(const Image& img) const {
  return resize_bilinear(img, img_size_, img_size_);  // an exact copy when the size already matches
}

std::vector<std::vector<double>> Classifier::predict(const std::vector<Image>& images) const {
  NoGradGuard no_grad;
  Tensor batch = images_to_batch(images, img_size_, mean_.data(), stddev_.data()).to(device_);
  Tensor logits = model_->forward(batch).to(Device::CPU);
  return softmax_rows(logits.to_vector<float>(), int64_t(images.size()), num_classes_);
}

std::vector<std::vector<double>> softmax_rows(const std::vector<float>& logits, int64_t rows, int64_t cols) {
  MINIDL_CHECK(rows >= 0 && cols > 0 && int64_t(logits.size()) == rows * cols, "softmax_rows: ", logits.size(),
               " logits do not form ", rows, " rows of ", cols);
  std::vector<std::vector<double>> out(static_cast<size_t>(rows), std::vector<double>(static_cast<size_t>(cols)));
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits.data() + r * cols;
    const double top = *std::max_element(x, x + cols);
    double total = 0;
    for (int64_t c = 0; c < cols; ++c) total += out[size_t(r)][size_t(c)] = std::exp(double(x[c]) - top);
    for (double& p : out[size_t(r)]) p /= total;
  }
  return out;
}

std::vector<int64_t> top_k(const std::vector<double>& probs, int k) {
  std::vector<int64_t> idx(probs.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
  const size_t n = std::min(idx.size(), size_t(std::max(k, 0)));
  std::partial_sort(idx.begin(), idx.begin() + std::ptrdiff_t(n), idx.end(), [&](int64_t a, int64_t b) {
    return probs[size_t(a)] != probs[size_t(b)] ? probs[size_t(a)] > probs[size_t(b)] : a < b;
  });
  idx.resize(n);
  return idx;
}

std::vector<std::string> read_class_names(const std::string& path) {
  std::ifstream f(path);
  MINIDL_CHECK(f.good() && !std::filesystem::is_directory(path), path, ": cannot open the classes file");
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(trim(line));
  while (!lines.empty() && lines.back().empty()) lines.pop_back();  // trailing blank lines
  MINIDL_CHECK(!lines.empty(), path, ": the classes file lists no names (expected one per line)");
  for (size_t i = 0; i < lines.size(); ++i)
    MINIDL_CHECK(!lines[i].empty(), path, ": line ", i + 1, " is empty (expected one class name per line)");
  return lines;
}

size_t classify_files(const Classifier& classifier, const std::vector<std::string>& paths, int batch_size,
                      const ClassifyHooks& hooks) {
  MINIDL_CHECK(batch_size >= 1, "classify_files: batch size must be at least 1, got ", batch_size);
  MINIDL_CHECK(!paths.empty(), "classify_files: no images to classify");
  std::vector<Image> images;
  std::vector<std::string> batch_paths;
  size_t classified = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    try {
      images.push_back(classifier.fit(decode_image_file(paths[i])));
      batch_paths.push_back(paths[i]);
    } catch (const std::exception& e) {  // a bad image costs that image only
      std::string reason = e.what();
      if (reason.find(paths[i]) == std::string::npos) reason = paths[i] + ": " + reason;
      if (hooks.on_skip) hooks.on_skip(paths[i], reason);
    }
    const bool last = i + 1 == paths.size();
    if (images.size() < size_t(batch_size) && !last) continue;
    if (!images.empty()) {
      std::vector<std::vector<double>> probs = classifier.predict(images);
      for (size_t j = 0; j < images.size(); ++j)
        if (hooks.on_result) hooks.on_result(Prediction{batch_paths[j], std::move(probs[j])});
      classified += images.size();
      images.clear();
      batch_paths.clear();
    }
    if (hooks.on_batch) hooks.on_batch(i + 1, paths.size());
  }
  MINIDL_CHECK(classified > 0, "none of the ", paths.size(), " images could be classified (each failed to read or decode)");
  return classified;
}

std::string format_top_k(const Classifier& classifier, const Prediction& p, int k) {
  std::string out = p.path + ":";
  const char* sep = " ";
  for (int64_t c : top_k(p.probs, k)) {
    char prob[16];
    std::snprintf(prob, sizeof prob, "%.4f", p.probs[size_t(c)]);
    out += sep + classifier.class_name(c) + " " + prob;
    sep = ", ";
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

PredictionCsv::PredictionCsv(const std::string& path, const Classifier& classifier)
    : path_(path), tmp_(path + ".tmp"), classifier_(classifier) {
  file_ = std::fopen(tmp_.c_str(), "wb");
  MINIDL_CHECK(file_ != nullptr, tmp_, ": cannot create the CSV file: ", std::strerror(errno));
  std::string header = "path,label,confidence";
  for (int64_t k = 0; k < classifier.num_classes(); ++k) (header += ',') += csv_field(classifier.column_name(k));
  std::fprintf(file_, "%s\n", header.c_str());
}

PredictionCsv::~PredictionCsv() {
  if (!file_) return;
  std::fclose(file_);
  std::remove(tmp_.c_str());
}

void PredictionCsv::write(const Prediction& p) {
  MINIDL_CHECK(file_ != nullptr, path_, ": CSV already committed");
  const int64_t best = top_k(p.probs, 1).at(0);
  std::string row = csv_field(p.path) + "," + csv_field(classifier_.class_name(best)) + "," + prob_text(p.probs[size_t(best)]);
  for (double q : p.probs) (row += ',') += prob_text(q);
  std::fprintf(file_, "%s\n", row.c_str());
}

void PredictionCsv::commit() {
  MINIDL_CHECK(file_ != nullptr, path_, ": CSV already committed");
  const bool write_failed = std::ferror(file_) != 0;
  const bool close_failed = std::fclose(file_) != 0;
  file_ = nullptr;
  if (write_failed || close_failed) {
    std::remove(tmp_.c_str());
    throw Error(tmp_ + ": writing the CSV failed: " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    std::remove(tmp_.c_str());
    throw Error(path_ + ": cannot rename " + tmp_ + " into place: " + ec.message());
  }
}

}  // namespace minidl
