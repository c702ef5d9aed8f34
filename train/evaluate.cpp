#include "train/evaluate.h"

#include <unistd.h>

#include <algorithm>

#include "autograd/grad_mode.h"
#include "datasets/device_upload.h"
#include "tensor/error.h"
#include "train/epoch_progress.h"

namespace minidl {

EvalResult evaluate(Module& model, DataLoader& loader, int64_t num_classes, int64_t max_batches, bool progress,
                    const std::string& label) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  EvalResult r;
  int64_t batches = loader.batches_per_epoch();
  if (max_batches > 0) batches = std::min(batches, max_batches);
  // Evaluation is short next to training: a live line on a terminal, nothing in a log file.
  EpochProgress bar(label, batches, 0, progress && isatty(fileno(stderr)));
  double loss_sum = 0;
  int64_t correct = 0;
  DeviceUploader uploader(model.device());  // batches go where the model is
  loader.start_epoch(0);
  for (int64_t b = 0; b < batches; ++b) {
    std::optional<Batch> batch = loader.next();
    MINIDL_CHECK(batch.has_value(), "evaluate: the loader ended after ", b, " of ", batches, " batches");
    // Scored on the host: one copy of the logits back per batch (none on the cpu).
    const Tensor logits = model.forward(uploader.upload(batch->images)).to(Device::CPU).contiguous();
    MINIDL_CHECK(logits.dim() == 2 && logits.size(1) == num_classes, "evaluate: the model gave logits of shape ",
                 shape_str(logits.shape()), "; expected [N, ", num_classes, "]");
    const Tensor l32 = logits.dtype() == DType::Float32 ? logits : logits.to(DType::Float32);
    const float* lp = l32.data<float>();
    const std::vector<int64_t> labels = batch->labels.to_vector<int64_t>();
    for (size_t i = 0; i < labels.size(); ++i) {
      EvalRecord rec{batch->indices[i], labels[i], score_logits(lp + i * size_t(num_classes), num_classes, labels[i])};
      loss_sum += rec.score.loss;
      correct += rec.score.predicted == rec.label;
      r.records.push_back(rec);
    }
    bar.update(b + 1, int64_t(labels.size()), loss_sum / double(r.records.size()),
               double(correct) / double(r.records.size()));
  }
  bar.finish();
  loader.start_epoch(0, loader.batches_per_epoch());  // stops the workers' read-ahead
  model.train(was_training);
  r.count = int64_t(r.records.size());
  r.loss = r.count ? loss_sum / double(r.count) : 0.0;
  r.accuracy = r.count ? double(correct) / double(r.count) : 0.0;
  return r;
}

ConfusionMatrix confusion_of(const std::vector<EvalRecord>& records, int64_t num_classes) {
  ConfusionMatrix cm(num_classes);
  for (const EvalRecord& r : records) cm.add(r.label, r.score.predicted);
  return cm;
}

}  // namespace minidl
