// The pieces a run is made of, built from a TrainConfig: the data (scan, split, decoded
// cache, three loaders) and the model with its optimizer and schedule. Shared by the
// trainer and the learning-rate finder, so both see exactly the same data and model.
#pragma once
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/image_cache.h"
#include "datasets/image_folder.h"
#include "datasets/loader.h"
#include "datasets/split.h"
#include "layers/lr_schedule.h"
#include "layers/optim.h"
#include "models/resnet.h"
#include "train/config.h"

namespace minidl {

struct RunData {
  ImageFolder folder;
  Split split;
  std::unique_ptr<ImageCache> cache;
  std::unique_ptr<DataLoader> train, val, test;
  int64_t steps_per_epoch = 0;  // training batches per epoch after --max-batches
};

// Scans config.data (listing skipped non-image files on `log`), takes the split from
// `split_from` when non-empty, else makes a stratified one (config.split_seed), writes it to
// `split_to` when non-empty, decodes the split's images (listing failures), and builds the
// loaders. Errors: a split part left empty, fewer training images than one batch.
RunData prepare_data(const TrainConfig& config, const std::string& split_from, const std::string& split_to,
                     std::ostream& log);

struct ModelSetup {
  std::shared_ptr<ResNet> model;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<Tensor> backbone;  // every parameter but the head's ("fc.")
};

// The model (seeded with config.seed; --weights loaded with the head replaced, its notice on
// `log`, or a from-scratch notice), and an optimizer with four groups: backbone and head,
// each split into decay (>= 2-D kernels) and no_decay (biases, BN). The backbone's lr is
// lr * backbone_lr_mult when freeze_epochs > 0, else lr. The model is moved to
// config.device (resolved: cuda without a GPU means the cpu) before the optimizer is made.
ModelSetup build_model(const TrainConfig& config, int64_t num_classes, bool load_weights, std::ostream& log);

// Freezing stops gradients at the backbone: its parameters stop requiring grad, so backward
// records and computes nothing for them, and the optimizer skips them (no grad, no update,
// no weight decay). Batch norm's running statistics still follow the data in train mode.
void set_backbone_trainable(ModelSetup& setup, bool trainable);

// The schedule of one phase (the frozen head phase, or the full phase) of `steps` optimizer
// steps, given steps_per_epoch to convert --warmup-epochs:
//   onecycle: OneCycleLR; its rising part is warmup_epochs long, or 30% when 0
//   cosine:   WarmupCosineLR, linear warm-up then cosine to 0
//   step:     StepLR, lr divided by 10 after each third of the phase
std::unique_ptr<LRSchedule> make_schedule(const TrainConfig& config, Optimizer& optimizer, int64_t steps,
                                          int64_t steps_per_epoch);

// checkpoint_meta keys for a trained model: arch, num_classes, classes, img_size, ImageNet
// mean and std (the normalisation the loaders apply).
std::map<std::string, std::string> model_metadata(const TrainConfig& config, const ImageFolder& folder);

}  // namespace minidl
