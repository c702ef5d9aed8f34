// Image classification with a saved ResNet: the core of apps/classify, kept in the library
// so that it can be tested without running the program.
//
//   Classifier c("eurosat.safetensors");             // settings from the checkpoint's metadata
//   classify_files(c, list_images("photos/"), 32, {
//       .on_result = [&](const Prediction& p) { std::cout << format_top_k(c, p, 3) << "\n"; }});
//
// Loading. The file is read once. The architecture, class count, class names, input size
// and normalisation come from, in order of preference: the caller's options, the
// checkpoint's metadata (models/checkpoint_meta.h), and then defaults (resnet50; the rows
// of fc.weight; 224; ImageNet's mean/std). The weights load strictly: any missing,
// unexpected or wrongly shaped tensor is an error that lists them all.
//
// Preprocessing is exactly the evaluation path of datasets/transforms.h: decode to RGB,
// resize_bilinear to img_size x img_size when the size differs, x / 255, normalise with the
// mean/std, float32 NCHW. Probabilities are the softmax of the logits, computed in double
// after subtracting the row's maximum (so large logits cannot overflow).
#pragma once
#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "datasets/image.h"
#include "models/checkpoint_meta.h"
#include "models/resnet.h"

namespace minidl {

struct ClassifierOptions {
  std::string arch;          // empty: the checkpoint's "arch", else "resnet50"
  int64_t num_classes = 0;   // 0: the checkpoint's "num_classes", else the rows of fc.weight
  int img_size = 0;          // 0: the checkpoint's "img_size", else 224
  // One class name per line (surrounding blanks trimmed, a trailing newline allowed). When
  // given, it overrides the checkpoint's names: an explicit choice beats a stored one.
  std::string classes_file;
  // Where the network runs (the caller resolves a request first, see tensor/device.h).
  // Decoding and the softmax stay on the host; only the batch goes up and the logits back.
  Device device = Device::CPU;
};

// Input sizes: the default when neither the options nor the checkpoint say, and the range
// accepted. The range is there to catch typos: at 16 the feature map is already 1x1 by
// layer3, and above 1024 a batch of ResNet50 activations needs tens of GiB.
inline constexpr int kDefaultImgSize = 224;
inline constexpr int kMinImgSize = 16;
inline constexpr int kMaxImgSize = 1024;

class Classifier {
 public:
  // Reads `model_path` and builds the model in eval mode. Errors name the file.
  explicit Classifier(const std::string& model_path, const ClassifierOptions& options = {});

  const std::string& arch() const { return arch_; }
  int64_t num_classes() const { return num_classes_; }
  int img_size() const { return img_size_; }
  const std::array<float, 3>& mean() const { return mean_; }
  const std::array<float, 3>& stddev() const { return stddev_; }
  bool has_class_names() const { return !names_.empty(); }
  const std::string& names_source() const { return names_source_; }  // "checkpoint", the classes file, or ""
  // The name of class k, or k in decimal when the classes are unnamed.
  std::string class_name(int64_t k) const;
  // A CSV column title for class k: its name, or "class_<k>" when unnamed.
  std::string column_name(int64_t k) const;
  ResNet& model() const { return *model_; }
  Device device() const { return device_; }

  // Resizes a decoded image to the network's input (a copy when already that size). Doing
  // this right after decoding keeps at most one full-size image in memory at a time.
  Image fit(const Image& img) const;
  // Softmax probabilities, one row of num_classes() per image, for any image sizes.
  std::vector<std::vector<double>> predict(const std::vector<Image>& images) const;

 private:
  std::string arch_;
  int64_t num_classes_ = 0;
  int img_size_ = 0;
  std::array<float, 3> mean_{}, stddev_{};
  std::vector<std::string> names_;
  std::string names_source_;
  Device device_ = Device::CPU;
  std::shared_ptr<ResNet> model_;
};

// Row-wise softmax in double: exp(x - max) / sum. logits is [rows x cols], row-major.
std::vector<std::vector<double>> softmax_rows(const std::vector<float>& logits, int64_t rows, int64_t cols);

// Class indices of the k largest probabilities, largest first; ties go to the lower index.
// k is clamped to the number of classes.
std::vector<int64_t> top_k(const std::vector<double>& probs, int k);

// Names from a classes file (see ClassifierOptions::classes_file). A missing file, an empty
// list or an empty line between names is an error naming the file.
std::vector<std::string> read_class_names(const std::string& path);

struct Prediction {
  std::string path;
  std::vector<double> probs;  // one per class, summing to 1
};

// Callbacks of classify_files; each may be left empty.
struct ClassifyHooks {
  std::function<void(const Prediction&)> on_result;  // in input order, a batch at a time
  // An image that could not be read or decoded; `reason` names the path.
  std::function<void(const std::string& path, const std::string& reason)> on_skip;
  std::function<void(size_t done, size_t total)> on_batch;  // images handled so far (classified or skipped)
};

// Decodes, batches (batch_size images per forward) and classifies `paths` in order,
// skipping images that fail to decode. Returns how many were classified; throws when
// `paths` is non-empty and none could be.
size_t classify_files(const Classifier& classifier, const std::vector<std::string>& paths, int batch_size,
                      const ClassifyHooks& hooks);

// "path: Forest 0.9312, River 0.0411, ..." with the k most probable classes.
std::string format_top_k(const Classifier& classifier, const Prediction& p, int k);

// One CSV field, quoted as RFC 4180 asks when it holds a comma, a quote, CR or LF (quotes
// inside are doubled).
std::string csv_field(const std::string& s);

// Writes predictions as CSV: header path,label,confidence,<column_name(0)>,...; then one row
// per image with the top class's name and probability, then every class's probability in
// index order (%.9g: enough digits to compare at 1e-6). Rows go to "<path>.tmp", which
// commit() renames to `path`; destroyed without commit, the temporary file is removed, so a
// failed run never leaves a half-written file under the real name.
class PredictionCsv {
 public:
  PredictionCsv(const std::string& path, const Classifier& classifier);
  ~PredictionCsv();
  PredictionCsv(const PredictionCsv&) = delete;
  PredictionCsv& operator=(const PredictionCsv&) = delete;

  void write(const Prediction& p);
  void commit();

 private:
  std::string path_, tmp_;
  const Classifier& classifier_;
  std::FILE* file_ = nullptr;
};

}  // namespace minidl
