// Train / validation / test split of an ImageFolder, stratified by class and seeded, and
// its file form, so that every run and every reported figure uses the same test images.
//
// Rounding rule, per class of n images (train_frac = t, val_frac = v, test gets the rest):
//   n_train = round(n * t), n_val = round(n * v)   (halves away from zero; clamped so that
//   n_train + n_val <= n), n_test = n - n_train - n_val.
// Then, when n >= 3, every part whose fraction is positive gets at least one image: a part
// left empty takes one from the largest part (ties: train, then val, then test). With
// t = 0.6, v = 0.2 EuroSAT's classes (3000/2500/2000 images) split exactly, giving
// 16,200 / 5,400 / 5,400.
//
// Which images go where: each class's sample indices (in scan order) are shuffled with a
// Generator seeded from (seed, label), so one class's draw does not depend on the others;
// the first n_train go to train, the next n_val to val, the rest to test. Each part is then
// sorted ascending (a split is a set; loaders decide the order).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image_folder.h"

namespace minidl {

struct Split {
  std::vector<int64_t> train, val, test;  // indices into ImageFolder::samples, each sorted
};

// Needs 0 < train_frac, 0 <= val_frac, train_frac + val_frac <= 1.
Split stratified_split(const ImageFolder& folder, double train_frac = 0.6, double val_frac = 0.2,
                       uint64_t seed = 0);

// The per-class part sizes the rounding rule above gives for a class of n images
// (exposed for tests and for reports).
struct PartSizes {
  int64_t train = 0, val = 0, test = 0;
};
PartSizes split_sizes(int64_t n, double train_frac, double val_frac);

// Writes JSON:
//   {"format": "minidl-split", "version": 1, "classes": [...],
//    "train": [{"path": "<Class>/<file>", "label": 0}, ...], "val": [...], "test": [...]}
// with one entry per line. Paths are relative to the folder's root ('/' separators).
// Written to "<path>.tmp" and renamed, so a reader never sees half a file.
void write_split_file(const std::string& path, const ImageFolder& folder, const Split& split);

// Reads a split file back against a fresh scan. Checks, with errors that name the split
// file: valid JSON of the form above; classes identical to the scan's (same names, same
// order); every listed path present in the scan (the first few missing ones are named) with
// the listed label; no path listed twice (in one part or in two). Files in the scan but not
// in the split are allowed (a split may cover part of a folder).
Split read_split_file(const std::string& path, const ImageFolder& folder);

}  // namespace minidl
