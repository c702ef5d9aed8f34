// DataLoader: turns cached images into float32 NCHW batches on worker threads.
//
// Determinism (training must resume bit-exactly):
// - epoch e's sample order is the given order, or, with shuffle, a Fisher-Yates permutation
//   of it drawn from a Generator seeded by epoch_seed(seed, e);
// - the sample at position p of epoch e (p counts samples from the epoch's start, not
//   from the resume point) is augmented with its own Generator seeded by
//   augment_seed(seed, e, p);
// so a batch's contents depend only on (seed, epoch, batch number): not on which worker
// built it, how many workers there are, or whether the epoch was resumed at first_batch.
//
// Threads: start_epoch launches `workers` threads that build batches ahead of the consumer,
// at most `prefetch` batches beyond the one next() will return; next() hands them out in
// order. Starting another epoch, or destroying the loader, mid-epoch stops and joins the
// workers first. An exception while building a batch is rethrown by the next() that would
// have returned it. workers = 0 builds each batch in next() itself (no threads).
//
// Preprocessing, per image:
//   augment: random resized crop to img_size x img_size (scale [crop_scale_min, 1], aspect
//            ratio [3/4, 4/3]) or, without resized_crop, resize_bilinear to img_size; then
//            horizontal and vertical flips (p = 0.5 each), a random quarter turn, colour
//            jitter (brightness, contrast, saturation strengths), in that order;
//   always:  resize_bilinear to img_size when not already that size, then ImageNet
//            normalisation (to_normalized_chw). Without augment this is exactly
//            images_to_batch, i.e. classify's preprocessing.
//
// The loader keeps a reference to the cache: the cache must outlive it.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "datasets/image_cache.h"
#include "datasets/image_folder.h"
#include "datasets/transforms.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace minidl {

struct AugmentOptions {
  bool flips = true, rot90 = true;
  bool resized_crop = true;
  double crop_scale_min = 0.5;
  float brightness = 0.2f, contrast = 0.2f, saturation = 0.2f;
};

struct LoaderOptions {
  int64_t batch_size = 32;
  int img_size = 64;
  bool shuffle = false;
  bool augment = false;
  AugmentOptions aug;
  bool drop_last = false;  // drop the last batch when it would be smaller than batch_size
  uint64_t seed = 0;
  int workers = 2;   // threads building batches; 0 = build in next()
  int prefetch = 4;  // batches built ahead of the consumer (>= 1)
};

struct Batch {
  Tensor images;                 // float32 [B, 3, S, S], ImageNet-normalised
  Tensor labels;                 // int64 [B]
  std::vector<int64_t> indices;  // sample indices into ImageFolder::samples
  int64_t epoch = 0, batch = 0;  // where it came from: batch number within the epoch
};

// The seeds described above (splitmix64 mixing, each with its own domain constant).
uint64_t epoch_seed(uint64_t seed, int64_t epoch);
uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t position);

// The training augmentation of one image (the uint8 steps above), exposed for tests and
// for looking at augmented images. Returns an img_size x img_size image.
Image augment_image(const Image& img, const AugmentOptions& aug, int img_size, Generator& gen);

class DataLoader {
 public:
  // `indices` into folder.samples, in the order an unshuffled epoch visits them. Those the
  // cache failed to decode are dropped (counted by dropped()); an index the cache was never
  // asked for is an error, since dropping it silently would hide a wrong cache.
  DataLoader(const ImageCache& cache, const ImageFolder& folder, std::vector<int64_t> indices, LoaderOptions opt);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t size() const { return int64_t(indices_.size()); }  // number of samples
  int64_t batches_per_epoch() const;
  const std::vector<int64_t>& indices() const { return indices_; }  // after dropping
  int64_t dropped() const { return dropped_; }  // indices dropped because the cache failed them
  const LoaderOptions& options() const { return opt_; }

  // Begins epoch `epoch` at batch `first_batch` (0 <= first_batch <= batches_per_epoch()),
  // abandoning whatever epoch was in progress.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch in order; nullopt once the epoch is done.
  // Throws when no epoch was started.
  std::optional<Batch> next();

  int64_t epoch() const { return epoch_; }
  // The batch number the next call to next() returns: what a checkpoint saves so that
  // start_epoch(epoch(), next_batch()) resumes exactly here.
  int64_t next_batch() const { return consumed_; }
  // The sample order of an epoch (what start_epoch uses).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  Batch build_batch(int64_t b) const;
  void worker_loop();
  void stop_workers();

  const ImageCache& cache_;
  std::vector<int64_t> indices_;
  std::vector<int64_t> labels_;  // label of every sample of the folder, by sample index
  int64_t dropped_ = 0;
  LoaderOptions opt_;

  // The current epoch.
  bool started_ = false;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t end_batch_ = 0;   // batches_per_epoch()
  int64_t consumed_ = 0;    // next batch number to hand out

  // Shared with the workers, under mu_.
  std::mutex mu_;
  std::condition_variable ready_cv_;  // a batch was finished (consumer waits)
  std::condition_variable space_cv_;  // the consumer took one, or stop (workers wait)
  bool stop_ = false;
  int64_t claimed_ = 0;  // next batch number a worker will build
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  std::vector<std::thread> threads_;
};

}  // namespace minidl
