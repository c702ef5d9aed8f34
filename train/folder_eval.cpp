#include "train/folder_eval.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <unordered_map>

#include "tensor/error.h"

namespace minidl {

void check_folder_classes(const Classifier& classifier, const ImageFolder& folder) {
  const int64_t k = classifier.num_classes();
  MINIDL_CHECK(int64_t(folder.classes.size()) == k, "--eval ", folder.root, ": the folder has ", folder.classes.size(),
               " class folders but the model has ", k, " classes");
  if (!classifier.has_class_names()) return;
  std::ostringstream diff;
  for (int64_t c = 0; c < k; ++c)
    if (folder.classes[size_t(c)] != classifier.class_name(c))
      diff << "\n  class " << c << ": model '" << classifier.class_name(c) << "', folder '" << folder.classes[size_t(c)]
           << "'";
  const std::string d = diff.str();
  MINIDL_CHECK(d.empty(), "--eval ", folder.root, ": the folder's classes (sorted) differ from the model's (",
               classifier.names_source(), "):", d);
}

FolderEval evaluate_folder(const Classifier& classifier, const ImageFolder& folder, const std::vector<int64_t>& indices,
                           int batch_size, ClassifyHooks hooks) {
  std::vector<int64_t> chosen = indices;
  if (chosen.empty())
    for (int64_t i = 0; i < int64_t(folder.samples.size()); ++i) chosen.push_back(i);
  std::vector<std::string> paths;
  std::unordered_map<std::string, int64_t> index_of;
  for (int64_t i : chosen) {
    MINIDL_CHECK(i >= 0 && i < int64_t(folder.samples.size()), "evaluate_folder: sample index ", i, " out of range");
    paths.push_back(folder.samples[size_t(i)].path);
    index_of[paths.back()] = i;
  }
  FolderEval out;
  out.confusion = ConfusionMatrix(classifier.num_classes());
  auto on_skip = hooks.on_skip;
  hooks.on_skip = [&](const std::string& path, const std::string& reason) {
    ++out.skipped;
    if (on_skip) on_skip(path, reason);
  };
  hooks.on_result = [&](const Prediction& p) {
    const int64_t i = index_of.at(p.path);
    EvalRecord r;
    r.index = i;
    r.label = folder.samples[size_t(i)].label;
    const auto best = std::max_element(p.probs.begin(), p.probs.end());  // first maximum: lower index wins ties
    r.score.predicted = best - p.probs.begin();
    r.score.confidence = *best;
    // Cross-entropy of the true class; the floor keeps a probability that underflowed to 0 finite.
    r.score.loss = -std::log(std::max(p.probs[size_t(r.label)], 1e-300));
    out.confusion.add(r.label, r.score.predicted);
    out.records.push_back(r);
  };
  classify_files(classifier, paths, batch_size, hooks);
  return out;
}

}  // namespace minidl
