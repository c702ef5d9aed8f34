// classify: labels images with a saved ResNet checkpoint.
//
//   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
//   ./build/apps/classify --model eurosat.safetensors photo.jpg more_photos/
//   ./build/apps/classify --model eurosat.safetensors --topk 3 --csv preds.csv ../shared/data/EuroSAT_RGB/River
//   ./build/apps/classify --model resnet50.safetensors --classes imagenet_classes.txt cat.png
//   ./build/apps/classify --model runs/r18/best.safetensors --eval ../shared/data/EuroSAT_RGB --split-file runs/r18/split.json
//   ./build/apps/classify --model eurosat.safetensors --device cuda photos/   # the network on the GPU
//
// Inputs are image files and folders (searched recursively for .jpg/.jpeg/.png/.bmp). Each
// image prints one line on stdout, "path: Forest 0.9312, River 0.0411, ...", with its
// --topk most probable classes; --csv also writes every class's probability. Skipped
// images, progress and the summary go to stderr, so stdout holds results only.
//
// --eval DIR scores the model on a labelled folder (one sub-folder per class), or with
// --split-file on that split's test part: accuracy, per-class precision/recall/F1, the
// confusion matrix (--confusion-csv writes it) and the worst predictions.
//
// --device cuda runs the network on the GPU (decoding and the softmax stay on the CPU); a
// build without CUDA, or a machine without a GPU, says so once on stderr and uses the CPU.
//
// The work is done by models/classifier.h (model loading, batching, CSV); this file is the
// command line around it. Exit codes: 0 when at least one image was classified, 1 on a
// runtime error (bad checkpoint, nothing classifiable), 2 on a command-line error.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "datasets/image.h"
#include "models/classifier.h"
#include "tensor/error.h"
#include "datasets/split.h"
#include "tensor/parallel.h"
#include "train/folder_eval.h"

using namespace minidl;

namespace {

struct Args {
  std::string model;
  ClassifierOptions options;
  int topk = 5;
  std::string eval_dir, split_file, confusion_csv;
  int top_losses = 10;
  std::string csv;
  int batch_size = 32;
  int threads = 0;  // 0: leave OpenMP's default (OMP_NUM_THREADS or all cores)
  std::string device = "cpu";
  std::vector<std::string> inputs;
};

const char* kFooter = R"(Preprocessing (the evaluation path of datasets/transforms.h, so results match training):
  decode with stb_image to 8-bit RGB (grey and alpha images converted, EXIF orientation
  ignored); resize to img-size x img-size with bilinear interpolation (half-pixel centres,
  no antialiasing) when the size differs - an image already at that size is not resampled;
  scale to [0,1]; normalise (x - mean) / std per channel with the checkpoint's "mean"/"std"
  metadata, else ImageNet's (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225); float32 NCHW.
  Confidence is the softmax of the logits, computed in double.

Settings: --arch, --num-classes and --img-size default to the checkpoint's metadata; without
  it, resnet50, the rows of fc.weight, and 224. Class names come from --classes, else the
  checkpoint's "classes" metadata, else the class index. The weights must match the model
  exactly (every tensor, every shape), or nothing is classified.

CSV: header path,label,confidence,<class 0>,...,<class K-1> (class_0.. when unnamed); one row
  per image with every class's probability in index order (%.9g); fields holding commas or
  quotes are quoted (RFC 4180). Written to OUT.tmp, then renamed to OUT.

Exit codes: 0 at least one image classified (unreadable images are reported on stderr and
  skipped), 1 runtime error or nothing classifiable, 2 command-line error.)";

void add_flags(CLI::App& app, Args& a) {
  app.add_option("--model", a.model, "safetensors checkpoint to classify with")->required()->check(CLI::ExistingFile);
  app.add_option("--arch", a.options.arch, "architecture (default: checkpoint metadata, else resnet50)")
      ->check(CLI::IsMember(resnet_arch_names()));
  app.add_option("--num-classes", a.options.num_classes,
                 "number of classes (default: checkpoint metadata, else the rows of fc.weight)")
      ->check(CLI::Range(int64_t(1), int64_t(INT_MAX)));
  app.add_option("--img-size", a.options.img_size, "square input size (default: checkpoint metadata, else 224)")
      ->check(CLI::Range(kMinImgSize, kMaxImgSize));
  app.add_option("--classes", a.options.classes_file, "text file with one class name per line, in index order")
      ->check(CLI::ExistingFile);
  app.add_option("--topk", a.topk, "classes printed per image")->capture_default_str()->check(CLI::Range(1, INT_MAX));
  app.add_option("--csv", a.csv, "also write every class's probability to this CSV file");
  app.add_option("--batch-size", a.batch_size, "images per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, INT_MAX));
  app.add_option("--threads", a.threads, "CPU threads (default: OMP_NUM_THREADS or all cores)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--device", a.device, "where the network runs: cpu, or cuda (falls back to the cpu, "
                 "with a message, when this build or machine has no GPU)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("inputs", a.inputs, "image files and folders (searched recursively)")
      ->check(CLI::ExistingPath);
  app.add_option("--eval", a.eval_dir, "score the model on this labelled folder (one sub-folder per class) instead")
      ->check(CLI::ExistingDirectory);
  app.add_option("--split-file", a.split_file, "with --eval: only the test part of this split (a run's split.json)")
      ->check(CLI::ExistingFile);
  app.add_option("--confusion-csv", a.confusion_csv, "with --eval: write the confusion matrix to this CSV file");
  app.add_option("--top-losses", a.top_losses, "with --eval: worst predictions to list")
      ->capture_default_str()
      ->check(CLI::Range(0, INT_MAX));
  app.footer(kFooter);
}

// Every image under the inputs, in the order given (each folder sorted by path).
std::vector<std::string> gather_images(const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  for (const std::string& in : inputs) {
    std::vector<std::string> found = list_images(in);
    if (found.empty()) std::fprintf(stderr, "classify: warning: no .jpg/.jpeg/.png/.bmp images in '%s'\n", in.c_str());
    paths.insert(paths.end(), found.begin(), found.end());
  }
  MINIDL_CHECK(!paths.empty(), "no images found in the inputs");
  return paths;
}

// Progress on stderr: rewritten in place on a terminal (unless stdout's results scroll on
// that terminal too, where an open progress line would break them up); otherwise a line
// about every tenth of the run, and only when the run is long enough for that to help.
class Progress {
 public:
  Progress(size_t total, int batch_size)
      : tty_(isatty(fileno(stderr)) != 0 && isatty(fileno(stdout)) == 0),
        on_(tty_ || total > size_t(batch_size) * 4),
        step_(std::max<size_t>(1, total / 10)) {}

  void update(size_t done, size_t total) {
    if (!on_) return;
    if (tty_) {
      std::fprintf(stderr, "\rclassified %zu/%zu images", done, total);
      open_line_ = done != total;
      if (!open_line_) std::fputc('\n', stderr);
    } else if (done >= next_ || done == total) {
      std::fprintf(stderr, "classified %zu/%zu images\n", done, total);
      next_ = done + step_;
    }
  }

  // Another stderr message: ends a progress line still open on the terminal first, so the
  // two do not run together.
  void message(const std::string& text) {
    if (open_line_) std::fputc('\n', stderr);
    open_line_ = false;
    std::fprintf(stderr, "%s\n", text.c_str());
  }

 private:
  bool tty_, on_;
  bool open_line_ = false;
  size_t step_, next_ = 0;
};

// The options with the device resolved: a cuda request without a GPU becomes the cpu.
ClassifierOptions resolved_options(const Args& a) {
  ClassifierOptions o = a.options;
  o.device = resolve_device(parse_device(a.device));
  return o;
}

// " on cuda" in the header line when the network runs on the GPU (nothing on the cpu).
const char* device_note(const Classifier& c) { return c.device() == Device::CPU ? "" : " on cuda"; }

// --eval: the model against a labelled folder (or a split's test part), with the tables the
// training run prints.
int run_eval(const Args& a) {
  const ImageFolder folder = scan_image_folder(a.eval_dir);
  for (const std::string& s : folder.skipped) std::fprintf(stderr, "classify: skipped (not an image): %s\n", s.c_str());
  std::vector<int64_t> indices;
  if (!a.split_file.empty()) indices = read_split_file(a.split_file, folder).test;
  const Classifier classifier(a.model, resolved_options(a));
  check_folder_classes(classifier, folder);
  const size_t total = indices.empty() ? folder.samples.size() : indices.size();
  std::fprintf(stderr, "classify --eval: %s, %lld classes, %dx%d input, %zu images (%s)%s\n", classifier.arch().c_str(),
               (long long)classifier.num_classes(), classifier.img_size(), classifier.img_size(), total,
               a.split_file.empty() ? "the whole folder" : "the split's test part", device_note(classifier));
  Progress progress(total, a.batch_size);
  ClassifyHooks hooks;
  hooks.on_skip = [&](const std::string&, const std::string& reason) { progress.message("classify: skipped: " + reason); };
  hooks.on_batch = [&](size_t done, size_t n) { progress.update(done, n); };
  const FolderEval ev = evaluate_folder(classifier, folder, indices, a.batch_size, hooks);

  std::vector<std::string> names;
  for (int64_t c = 0; c < classifier.num_classes(); ++c) names.push_back(classifier.class_name(c));
  const ClassificationReport report = classification_report(ev.confusion);
  std::printf("accuracy %.4f%% on %lld images (%zu skipped)\n\n%s\n%s", 100.0 * report.accuracy,
              (long long)ev.confusion.total(), ev.skipped, format_classification_table(report, names).c_str(),
              format_confusion_table(ev.confusion, names).c_str());
  const auto worst = top_losses(ev.records, size_t(a.top_losses), /*mistakes_only=*/true);
  if (!worst.empty()) std::printf("\nworst %zu mistakes (path, true -> predicted, confidence):\n", worst.size());
  for (const EvalRecord& r : worst)
    std::printf("  %s  %s -> %s  %.1f%%\n", folder.samples[size_t(r.index)].path.c_str(), names[size_t(r.label)].c_str(),
                names[size_t(r.score.predicted)].c_str(), 100.0 * r.score.confidence);
  if (!a.confusion_csv.empty()) {
    write_confusion_csv(a.confusion_csv, ev.confusion, names);
    std::fprintf(stderr, "classify: wrote %s\n", a.confusion_csv.c_str());
  }
  return 0;
}

int run(const Args& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  if (!a.eval_dir.empty()) return run_eval(a);
  const std::vector<std::string> paths = gather_images(a.inputs);  // first: cheap, and may fail
  const Classifier classifier(a.model, resolved_options(a));
  std::fprintf(stderr, "classify: %s, %lld classes, %dx%d input, %zu image%s%s\n", classifier.arch().c_str(),
               (long long)classifier.num_classes(), classifier.img_size(), classifier.img_size(), paths.size(),
               paths.size() == 1 ? "" : "s", device_note(classifier));

  std::unique_ptr<PredictionCsv> csv;
  if (!a.csv.empty()) csv = std::make_unique<PredictionCsv>(a.csv, classifier);
  Progress progress(paths.size(), a.batch_size);
  size_t skipped = 0;
  ClassifyHooks hooks;
  hooks.on_result = [&](const Prediction& p) {
    std::printf("%s\n", format_top_k(classifier, p, a.topk).c_str());
    if (csv) csv->write(p);
  };
  hooks.on_skip = [&](const std::string&, const std::string& reason) {
    ++skipped;
    progress.message("classify: skipped: " + reason);
  };
  hooks.on_batch = [&](size_t done, size_t total) { progress.update(done, total); };

  const auto start = std::chrono::steady_clock::now();
  const size_t classified = classify_files(classifier, paths, a.batch_size, hooks);
  if (csv) csv->commit();
  std::fflush(stdout);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "classify: %zu classified, %zu skipped in %.2f s (%.1f images/s)%s%s\n", classified, skipped,
               secs, double(classified) / std::max(secs, 1e-9), csv ? "; wrote " : "", csv ? a.csv.c_str() : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Classifies images with a saved ResNet checkpoint (.safetensors); prints the top-k classes per image."};
  Args args;
  add_flags(app, args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "classify: %s\nRun with --help for the options.\n", e.what());
    return 2;
  }
  // Which mode: image inputs, or --eval with its companions.
  const char* usage_error = nullptr;
  if (!args.eval_dir.empty() && !args.inputs.empty()) usage_error = "give either image inputs or --eval DIR, not both";
  else if (args.eval_dir.empty() && (!args.split_file.empty() || !args.confusion_csv.empty()))
    usage_error = "--split-file and --confusion-csv need --eval DIR";
  else if (args.eval_dir.empty() && args.inputs.empty()) usage_error = "no inputs: give image files or folders, or --eval DIR";
  if (usage_error) {
    std::fprintf(stderr, "classify: %s\nRun with --help for the options.\n", usage_error);
    return 2;
  }
  try {
    return run(args);
  } catch (const Error& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
  } catch (const std::exception& e) {  // out of memory, a filesystem error: still a message, not a crash
    std::fprintf(stderr, "classify: %s\n", e.what());
  }
  return 1;
}
