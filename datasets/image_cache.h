// ImageCache: decodes a set of an ImageFolder's images once, into memory, as uint8 RGB at
// their own size (EuroSAT: 27,000 x 64x64x3 bytes = 332 MB). Training then augments from
// memory every epoch instead of re-reading and re-decoding JPEGs.
//
// A corrupt or unreadable image is never fatal: it is recorded in failures() as
// "path: reason" and left out (has() is false), and DataLoader drops it from its indices.
// The caller decides whether failures are acceptable (report them, or stop).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image.h"
#include "datasets/image_folder.h"

namespace minidl {

class ImageCache {
 public:
  // Decodes folder.samples[i] for every i in `indices` (every sample when `indices` is
  // empty; duplicates are decoded once) on `threads` threads (<= 0: one per hardware
  // thread), showing a progress bar on stderr when `progress`. Out-of-range indices throw.
  ImageCache(const ImageFolder& folder, const std::vector<int64_t>& indices, int threads, bool progress = true);

  // The decoded image of a sample; throws minidl::Error when the sample is not cached
  // (never requested, or its decoding failed).
  const Image& image(int64_t sample_index) const;
  bool has(int64_t sample_index) const;
  // True when the sample was requested but could not be decoded (it is in failures()).
  bool failed(int64_t sample_index) const;
  const std::vector<std::string>& failures() const { return failures_; }  // "path: reason", in sample order
  size_t bytes() const { return bytes_; }  // pixel bytes held
  size_t size() const { return images_.size(); }  // number of images held
  double seconds() const { return seconds_; }     // wall time the decoding took

 private:
  static constexpr int32_t kNotRequested = -1, kFailed = -2;
  std::vector<int32_t> slot_;  // per sample of the folder: index into images_, kNotRequested or kFailed
  std::vector<Image> images_;
  std::vector<std::string> failures_;
  size_t bytes_ = 0;
  double seconds_ = 0;
};

}  // namespace minidl
