// The per-epoch log of a run: one record per epoch, appended to OUT/metrics.jsonl (one JSON
// object a line, for programs) and OUT/metrics.csv (for spreadsheets), and read back for
// the report's curves. Epochs are numbered from 1.
//
// train_loss is the loss that was optimised (with label smoothing, averaged over the
// epoch's batches); val_loss is plain cross-entropy on the validation split.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minidl {

struct EpochRecord {
  int epoch = 0;
  std::string phase;   // "head" while the backbone is frozen, else "full"
  double train_loss = 0, train_acc = 0;
  double val_loss = 0, val_acc = 0;
  double lr = 0;       // the head's lr at the end of the epoch
  double seconds = 0;  // wall time of the epoch, evaluation included
  double images_per_sec = 0;  // training throughput
  int64_t train_images = 0, val_images = 0;
};

// Appends to OUT/metrics.jsonl and OUT/metrics.csv (writing the CSV header first when the
// file is new).
void append_epoch_record(const std::string& out_dir, const EpochRecord& r);
// Reads OUT/metrics.jsonl; an absent file is an empty history. A malformed line is an error
// naming the file and line.
std::vector<EpochRecord> read_epoch_records(const std::string& out_dir);
// Rewrites both files keeping only epochs < first_dropped, so a resumed run that repeats an
// epoch does not log it twice.
void truncate_epoch_records(const std::string& out_dir, int first_dropped);

}  // namespace minidl
