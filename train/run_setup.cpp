#include "train/run_setup.h"

#include <algorithm>
#include <cstdio>
#include <ostream>

#include "layers/adamw.h"
#include "layers/sgd.h"
#include "models/checkpoint_meta.h"
#include "models/state_dict.h"
#include "tensor/error.h"

namespace minidl {

namespace {

// Lists at most `limit` lines, then how many were left out: a dataset with thousands of
// stray files should not bury the log.
void list_some(std::ostream& log, const std::vector<std::string>& lines, size_t limit = 10) {
  for (size_t i = 0; i < lines.size() && i < limit; ++i) log << "    " << lines[i] << "\n";
  if (lines.size() > limit) log << "    ... and " << lines.size() - limit << " more\n";
}

void check_part(const std::vector<int64_t>& part, const char* name, const std::string& where) {
  MINIDL_CHECK(!part.empty(), "the ", name, " split is empty (", where,
               "); every class needs at least 3 images for a train/val/test split");
}

// With --max-batches, evaluation sees only max_batches batches. The split lists samples
// class by class, so its first images would all be of one class; an evenly spaced subset
// keeps every class in a smoke run's numbers.
std::vector<int64_t> evenly_spaced(const std::vector<int64_t>& part, const TrainConfig& c) {
  const size_t want = size_t(c.max_batches * c.batch_size);
  if (c.max_batches <= 0 || part.size() <= want) return part;
  std::vector<int64_t> out;
  for (size_t i = 0; i < want; ++i) out.push_back(part[i * part.size() / want]);
  return out;
}

}  // namespace

RunData prepare_data(const TrainConfig& c, const std::string& split_from, const std::string& split_to,
                     std::ostream& log) {
  RunData d;
  d.folder = scan_image_folder(c.data);
  log << "data: " << c.data << ": " << d.folder.classes.size() << " classes, " << d.folder.samples.size()
      << " images\n";
  if (!d.folder.skipped.empty()) {
    log << "  skipped " << d.folder.skipped.size() << " file(s) that are not images:\n";
    list_some(log, d.folder.skipped);
  }
  if (!split_from.empty()) {
    d.split = read_split_file(split_from, d.folder);
    log << "  split: read from " << split_from << "\n";
  } else {
    d.split = stratified_split(d.folder, 0.6, 0.2, c.split_seed);
    log << "  split: stratified 60/20/20, split seed " << c.split_seed << "\n";
  }
  const std::string where = split_from.empty() ? "stratified split of " + c.data : split_from;
  check_part(d.split.train, "training", where);
  check_part(d.split.val, "validation", where);
  check_part(d.split.test, "test", where);
  const bool write = !split_to.empty() && split_to != split_from;
  if (write) write_split_file(split_to, d.folder, d.split);
  log << "  train " << d.split.train.size() << " / val " << d.split.val.size() << " / test " << d.split.test.size()
      << (write ? " (saved to " + split_to + ")" : std::string()) << "\n";

  std::vector<int64_t> all = d.split.train;
  all.insert(all.end(), d.split.val.begin(), d.split.val.end());
  all.insert(all.end(), d.split.test.begin(), d.split.test.end());
  d.cache = std::make_unique<ImageCache>(d.folder, all, c.threads, c.progress);
  char buf[160];
  std::snprintf(buf, sizeof buf, "  decoded %zu images (%.1f MB) in %.1f s\n", d.cache->size(),
                double(d.cache->bytes()) / 1e6, d.cache->seconds());
  log << buf;
  if (!d.cache->failures().empty()) {
    log << "  skipped " << d.cache->failures().size() << " image(s) that could not be decoded:\n";
    list_some(log, d.cache->failures());
  }

  LoaderOptions lo;
  lo.batch_size = c.batch_size;
  lo.img_size = c.img_size;
  lo.seed = c.seed;
  lo.workers = c.workers;
  LoaderOptions train_opt = lo;
  train_opt.shuffle = true;
  train_opt.augment = c.augment;
  train_opt.drop_last = true;  // a last batch of one image would break batch norm's statistics
  d.train = std::make_unique<DataLoader>(*d.cache, d.folder, d.split.train, train_opt);
  d.val = std::make_unique<DataLoader>(*d.cache, d.folder, evenly_spaced(d.split.val, c), lo);
  d.test = std::make_unique<DataLoader>(*d.cache, d.folder, evenly_spaced(d.split.test, c), lo);
  MINIDL_CHECK(d.train->size() >= c.batch_size, "the training split has ", d.train->size(),
               " usable images, fewer than one batch of ", c.batch_size, "; use a smaller --batch-size");
  MINIDL_CHECK(d.val->size() > 0, "no usable validation images (all failed to decode)");
  MINIDL_CHECK(d.test->size() > 0, "no usable test images (all failed to decode)");
  d.steps_per_epoch = d.train->batches_per_epoch();
  if (c.max_batches > 0) d.steps_per_epoch = std::min(d.steps_per_epoch, c.max_batches);
  return d;
}

ModelSetup build_model(const TrainConfig& c, int64_t num_classes, bool load_weights, std::ostream& log) {
  ModelSetup s;
  Generator gen(c.seed);
  s.model = make_resnet(c.arch, num_classes, gen);
  if (load_weights && !c.weights.empty()) {
    std::string notice;
    load_pretrained(*s.model, c.weights, "fc.", &notice);
    log << "weights: " << c.weights << "\n";
    if (!notice.empty()) log << "  " << notice << "\n";
  } else if (load_weights) {
    log << "weights: none given (--weights): training " << c.arch << " from scratch (random init, seed " << c.seed
        << ")\n";
  }
  // Onto the run's device before the optimizer is made, so its state is born there.
  s.model->to(resolve_device(parse_device(c.device)));
  NamedTensors head, body;
  for (auto& [name, t] : s.model->named_parameters()) (name.rfind("fc.", 0) == 0 ? head : body).emplace_back(name, t);
  for (auto& [name, t] : body) s.backbone.push_back(t);
  const double body_lr = c.freeze_epochs > 0 ? c.lr * c.backbone_lr_mult : c.lr;
  std::vector<ParamGroup> groups;
  for (auto& g : weight_decay_groups(body, c.weight_decay, body_lr)) {
    g.name = "backbone_" + g.name;
    groups.push_back(std::move(g));
  }
  for (auto& g : weight_decay_groups(head, c.weight_decay, c.lr)) {
    g.name = "head_" + g.name;
    groups.push_back(std::move(g));
  }
  if (c.optimizer == "sgd") {
    SGDOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    o.weight_decay = c.weight_decay;
    s.optimizer = std::make_unique<SGD>(std::move(groups), o);
  } else {
    AdamWOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    s.optimizer = std::make_unique<AdamW>(std::move(groups), o);
  }
  return s;
}

void set_backbone_trainable(ModelSetup& s, bool trainable) {
  for (Tensor& t : s.backbone) {
    t.requires_grad_(trainable);
    if (!trainable) t.zero_grad();
  }
}

std::unique_ptr<LRSchedule> make_schedule(const TrainConfig& c, Optimizer& opt, int64_t steps,
                                          int64_t steps_per_epoch) {
  MINIDL_CHECK(steps > 0, "make_schedule: a phase needs at least one step, got ", steps);
  const int64_t warmup = int64_t(std::llround(c.warmup_epochs * double(steps_per_epoch)));
  if (c.schedule == "onecycle") {
    const double pct = c.warmup_epochs > 0 ? std::clamp(double(warmup) / double(steps), 0.0, 1.0) : 0.3;
    return std::make_unique<OneCycleLR>(opt, steps, pct);
  }
  if (c.schedule == "cosine") {
    // A phase of one step has no room for warm-up; the cosine then starts at the peak.
    return std::make_unique<WarmupCosineLR>(opt, std::min(warmup, steps - 1), std::max<int64_t>(steps, 1));
  }
  return std::make_unique<StepLR>(opt, std::max<int64_t>(1, (steps + 2) / 3), 0.1);
}

std::map<std::string, std::string> model_metadata(const TrainConfig& c, const ImageFolder& folder) {
  ModelMeta m;
  m.arch = c.arch;
  m.num_classes = int64_t(folder.classes.size());
  m.classes = folder.classes;
  m.img_size = c.img_size;
  m.mean = std::array<float, 3>{kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]};
  m.stddev = std::array<float, 3>{kImageNetStd[0], kImageNetStd[1], kImageNetStd[2]};
  return to_metadata(m);
}

}  // namespace minidl
