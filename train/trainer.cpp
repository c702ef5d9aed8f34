#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <ostream>

#include "autograd/ops.h"
#include "datasets/device_upload.h"
#include "models/state_dict.h"
#include "tensor/error.h"
#include "tensor/parallel.h"
#include "train/epoch_progress.h"
#include "train/evaluate.h"
#include "train/final_eval.h"
#include "train/run_log.h"
#include "train/run_setup.h"

namespace minidl {

namespace fs = std::filesystem;

std::string last_checkpoint_path(const std::string& out_dir) { return (fs::path(out_dir) / "last.safetensors").string(); }
std::string best_checkpoint_path(const std::string& out_dir) { return (fs::path(out_dir) / "best.safetensors").string(); }

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Threads first (validation and the saved config see the count actually used), then checks,
// then the device: cuda without a GPU (or without the backend) runs on the cpu after one
// message, and the config records the device actually used.
void prepare_config(TrainConfig& c) {
  if (c.threads > 0) set_num_threads(c.threads);
  c.threads = get_num_threads();
  validate_config(c);
  c.device = device_name(resolve_device(parse_device(c.device)));
}

// logits on any device (read back to the host once), labels on the host.
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const Tensor l = logits.detach().to(Device::CPU).contiguous();
  const std::vector<float> v = l.to_vector<float>();
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  const int64_t k = l.size(1);
  int64_t n = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (v[i * size_t(k) + size_t(j)] > v[i * size_t(k) + size_t(best)]) best = j;
    n += best == y[i];
  }
  return n;
}

// The name of the first parameter or buffer holding a NaN or an infinity; empty when none.
std::string first_non_finite(const Module& m) {
  for (const auto& [name, t] : m.state_dict()) {
    if (t.dtype() == DType::Float32) {
      const Tensor c = t.detach().to(Device::CPU).contiguous();
      const float* p = c.data<float>();
      for (int64_t i = 0; i < c.numel(); ++i)
        if (!std::isfinite(p[i])) return name;
    } else if (t.dtype() == DType::Float64) {
      for (double v : t.to_vector<double>())
        if (!std::isfinite(v)) return name;
    }
  }
  return "";
}

double head_lr(const Optimizer& opt) {
  for (const ParamGroup& g : opt.param_groups())
    if (g.name.rfind("head_", 0) == 0) return g.lr;
  return opt.param_groups().back().lr;
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Checks the resume request against the checkpoint; returns the saved state.
TrainState check_resume(const TrainConfig& c, const std::string& last, std::ostream& log) {
  MINIDL_CHECK(fs::exists(last), "--resume: ", last, " does not exist; there is no run to resume in ", c.out);
  const CheckpointInfo info = read_checkpoint_info(last);
  const auto conflicts = resume_conflicts(info.config, c);
  if (!conflicts.empty()) {
    std::string msg = "--resume: " + last + " was written with other settings, and continuing with these would not "
                      "give the run it started as:";
    for (const auto& line : conflicts) msg += "\n  " + line;
    msg += "\nresume with the checkpoint's settings (flags left out are taken from it), or start a new run in "
           "another --out";
    throw Error(msg);
  }
  if (info.config.threads != c.threads)
    log << "warning: the checkpoint ran on " << info.config.threads << " threads, this run on " << c.threads
        << ": the result will match an uninterrupted run only to rounding, not bit for bit\n";
  if (info.config.device != c.device)
    log << "warning: the checkpoint ran on " << info.config.device << ", this run on " << c.device
        << ": the result will match an uninterrupted run only to rounding, not bit for bit\n";
  return info.state;
}

}  // namespace

TrainOutcome train_model(TrainConfig c, std::ostream& log, const std::atomic<bool>* interrupt) {
  const auto start = Clock::now();
  prepare_config(c);
  const std::string last = last_checkpoint_path(c.out), best = best_checkpoint_path(c.out);
  TrainState st;
  if (c.resume)
    st = check_resume(c, last, log);
  else
    MINIDL_CHECK(!fs::exists(last), c.out, " already holds a training run (", last,
                 "); pass --resume to continue it, or choose another --out");
  // A typo in --data should not leave an empty run folder behind.
  MINIDL_CHECK(fs::is_directory(c.data), "--data: ", c.data, " is not an existing folder");
  fs::create_directories(c.out);
  const std::string split_json = (fs::path(c.out) / "split.json").string();
  RunData data = prepare_data(c, c.resume ? split_json : c.split_file, split_json, log);
  const int64_t k = int64_t(data.folder.classes.size());
  ModelSetup ms = build_model(c, k, !c.resume, log);
  const auto meta = model_metadata(c, data.folder);
  if (c.freeze_epochs > 0 && c.weights.empty())
    log << "warning: --freeze-epochs " << c.freeze_epochs << " without --weights: the head trains on a random, "
        << "frozen backbone for those epochs\n";
  if (c.resume) {
    st = load_training_checkpoint(last, *ms.model, *ms.optimizer).state;
    default_generator().set_state(st.rng);
    truncate_epoch_records(c.out, st.epoch + 1);  // an epoch logged after this checkpoint is redone
    log << "resuming " << last << " at epoch " << st.epoch + 1 << ", batch " << st.batch << " (step "
        << st.global_step << "): weights, optimizer state and position restored\n";
  } else {
    manual_seed(c.seed);
    truncate_epoch_records(c.out, 1);  // a fresh run starts a fresh log
  }
  const int64_t steps = data.steps_per_epoch;
  log << c.arch << ": " << c.epochs << " epochs of " << steps << " batches of " << c.batch_size << " at "
      << c.img_size << "x" << c.img_size << ", " << c.optimizer << " lr " << c.lr << " (" << c.schedule
      << "), " << c.threads << (c.threads == 1 ? " thread" : " threads");
  if (c.device != "cpu") log << ", on " << c.device << " (" << cuda_status() << ")";
  log << "\n";
  DeviceUploader uploader(parse_device(c.device));

  TrainOutcome outcome;
  // A stop on a non-finite value leaves OUT/last.safetensors as it was: the last good state.
  auto diverged = [&](const std::string& what) {
    outcome.status = TrainOutcome::Status::Diverged;
    outcome.message = what + "; training stopped. " +
                      (fs::exists(last) ? "The last good checkpoint, " + last + ", is kept unchanged. "
                                        : std::string("No checkpoint had been written yet. ")) +
                      "Start again with a lower --lr (now " + fmt("%g", c.lr) + ") or more --warmup-epochs.";
    outcome.state = st;
    return outcome;
  };
  auto stopped = [&](const std::string& why) {
    outcome.status = TrainOutcome::Status::Stopped;
    outcome.message = why;
    outcome.state = st;
    return outcome;
  };
  // A finite loss can still be followed by an update that overflows the weights, so they are
  // checked before they are saved: a checkpoint is never worse than the one it replaces.
  auto weights_problem = [&](const std::string& where) {
    const std::string name = first_non_finite(*ms.model);
    return name.empty() ? name : "the weights became non-finite (" + name + ") " + where;
  };
  auto save_last = [&] {
    st.rng = default_generator().state();
    save_training_checkpoint(last, *ms.model, *ms.optimizer, st, c, meta);
  };
  auto interrupted = [&] { return interrupt != nullptr && interrupt->load(); };
  auto interrupted_message = [&] {
    return "interrupted: saved " + last + " at epoch " + std::to_string(st.epoch + 1) + ", batch " +
           std::to_string(st.batch) + "; continue with --out " + c.out + " --resume";
  };
  std::unique_ptr<LRSchedule> schedule;
  int schedule_phase = -1;
  int64_t run_batches = 0;  // batches trained by this process (for --stop-after-batches)

  while (st.epoch < c.epochs) {
    const bool frozen = st.epoch < c.freeze_epochs;
    set_backbone_trainable(ms, !frozen);
    const int phase = frozen ? 0 : 1;
    if (phase != schedule_phase) {
      const int first = frozen ? 0 : c.freeze_epochs, end = frozen ? c.freeze_epochs : c.epochs;
      schedule = make_schedule(c, *ms.optimizer, steps * (end - first), steps);
      schedule->set_step(st.global_step - steps * first);
      schedule_phase = phase;
    }
    const auto epoch_start = Clock::now();
    ms.model->train();
    data.train->start_epoch(st.epoch, st.batch);
    const std::string label = "epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(c.epochs) +
                              (frozen ? " [head]" : "");
    EpochProgress bar(label, steps, st.batch, c.progress);
    int64_t images = 0;
    while (st.batch < steps) {
      std::optional<Batch> batch = data.train->next();
      MINIDL_CHECK(batch.has_value(), "training loader ended after ", st.batch, " of ", steps, " batches");
      const Tensor logits = ms.model->forward(uploader.upload(batch->images));
      const Tensor loss = cross_entropy(logits, uploader.upload(batch->labels), c.label_smoothing);
      const double value = loss.item();
      if (!std::isfinite(value))
        return diverged(std::string("the loss became ") + (std::isnan(value) ? "NaN" : "infinite") + " at epoch " +
                        std::to_string(st.epoch + 1) + ", batch " + std::to_string(st.batch + 1));
      ms.optimizer->zero_grad();
      loss.backward();
      ms.optimizer->step();
      schedule->step();
      const int64_t n = batch->labels.numel();
      st.loss_sum += value * double(n);
      st.correct += count_correct(logits, batch->labels);
      st.seen += n;
      ++st.batch;
      ++st.global_step;
      ++run_batches;
      images += n;
      bar.update(st.batch, n, st.loss_sum / double(st.seen), double(st.correct) / double(st.seen));
      const bool due = c.checkpoint_every > 0 && st.global_step % c.checkpoint_every == 0;
      if ((due || interrupted()) && st.batch < steps) {  // at the epoch's end, the epoch checkpoint follows
        const std::string problem = weights_problem("at epoch " + std::to_string(st.epoch + 1) + ", batch " +
                                                    std::to_string(st.batch));
        if (!problem.empty()) return diverged(problem);
        save_last();
        if (interrupted()) return stopped(interrupted_message());
      }
      if (c.stop_after_batches > 0 && run_batches >= c.stop_after_batches)
        return stopped("stopped after " + std::to_string(run_batches) +
                       " batches (--stop-after-batches), without a checkpoint of its own, as if killed; "
                       "continue with --resume");
    }
    bar.finish();
    const std::string problem = weights_problem("by the end of epoch " + std::to_string(st.epoch + 1));
    if (!problem.empty()) return diverged(problem);
    const double train_seconds = seconds_since(epoch_start);
    const EvalResult val = evaluate(*ms.model, *data.val, k, c.max_batches, c.progress, "  validating");
    EpochRecord rec;
    rec.epoch = st.epoch + 1;
    rec.phase = frozen ? "head" : "full";
    rec.train_loss = st.seen ? st.loss_sum / double(st.seen) : 0.0;
    rec.train_acc = st.seen ? double(st.correct) / double(st.seen) : 0.0;
    rec.val_loss = val.loss;
    rec.val_acc = val.accuracy;
    rec.lr = head_lr(*ms.optimizer);
    rec.seconds = seconds_since(epoch_start);
    rec.images_per_sec = train_seconds > 0 ? double(images) / train_seconds : 0.0;
    rec.train_images = st.seen;
    rec.val_images = val.count;
    append_epoch_record(c.out, rec);
    const bool improved = val.accuracy > st.best_val_acc;
    log << label << "  train loss " << fmt("%.4f", rec.train_loss) << " acc " << fmt("%.2f%%", 100 * rec.train_acc)
        << "  val loss " << fmt("%.4f", rec.val_loss) << " acc " << fmt("%.2f%%", 100 * rec.val_acc) << "  lr "
        << fmt("%.3g", rec.lr) << "  " << fmt("%.1f s", rec.seconds) << " (" << fmt("%.1f", rec.images_per_sec)
        << " img/s)" << (improved ? "  *best*" : "") << std::endl;
    st.epoch += 1;
    st.batch = 0;
    st.loss_sum = 0;
    st.correct = st.seen = 0;
    if (improved) {
      st.best_val_acc = val.accuracy;
      st.best_epoch = rec.epoch;
      save_model_checkpoint(best, *ms.model, meta);
    }
    save_last();
    if (interrupted() && st.epoch < c.epochs) return stopped(interrupted_message());
  }

  // The reported model is the one chosen by validation accuracy, not the last one.
  load_weights_file(*ms.model, best);
  const std::string model_label = "best epoch " + std::to_string(st.best_epoch) + ", val acc " +
                                  fmt("%.2f%%", 100 * st.best_val_acc);
  const TestSummary t = evaluate_and_report(*ms.model, data, c, st, model_label, seconds_since(start), log);
  outcome.state = st;
  outcome.test_accuracy = t.accuracy;
  outcome.test_macro_f1 = t.macro_f1;
  outcome.test_images = t.images;
  return outcome;
}

LrFindResult run_lr_finder(TrainConfig c, std::ostream& log) {
  prepare_config(c);
  fs::create_directories(c.out);
  // No split.json here: a sweep should not overwrite the split of a run sharing this folder.
  RunData data = prepare_data(c, c.split_file, "", log);
  ModelSetup ms = build_model(c, int64_t(data.folder.classes.size()), true, log);
  set_backbone_trainable(ms, c.freeze_epochs == 0);
  manual_seed(c.seed);
  ms.model->train();
  // Each group keeps its ratio to the head's lr (a slower backbone stays slower).
  std::vector<double> ratio;
  for (const ParamGroup& g : ms.optimizer->param_groups()) ratio.push_back(g.initial_lr / c.lr);
  int64_t epoch = 0;
  data.train->start_epoch(epoch);
  LrFindOptions o;
  o.start_lr = c.lr_find_start;
  o.end_lr = c.lr_find_end;
  o.iters = c.lr_find_iters;
  if (c.max_batches > 0) o.iters = int(std::min<int64_t>(o.iters, std::max<int64_t>(c.max_batches, 2)));
  log << "lr finder: " << o.iters << " batches, lr " << o.start_lr << " .. " << o.end_lr << " (log scale)\n";
  DeviceUploader uploader(parse_device(c.device));
  EpochProgress bar("lr finder", o.iters, 0, c.progress);
  int done = 0;
  auto step = [&](double lr) {
    auto& groups = ms.optimizer->param_groups();
    for (size_t i = 0; i < groups.size(); ++i) groups[i].lr = lr * ratio[i];
    std::optional<Batch> batch = data.train->next();
    if (!batch) {  // a small dataset: keep sweeping over further epochs
      data.train->start_epoch(++epoch);
      batch = data.train->next();
    }
    const Tensor logits = ms.model->forward(uploader.upload(batch->images));
    const Tensor loss = cross_entropy(logits, uploader.upload(batch->labels), c.label_smoothing);
    const double value = loss.item();
    if (std::isfinite(value)) {
      ms.optimizer->zero_grad();
      loss.backward();
      ms.optimizer->step();
    }
    bar.update(++done, batch->labels.numel(), value, double(count_correct(logits, batch->labels)) /
                                                         double(batch->labels.numel()));
    return value;
  };
  LrFindResult r = lr_range_test(step, o);
  bar.finish();
  write_lr_find_csv((fs::path(c.out) / "lr_find.csv").string(), r);
  write_lr_find_svg((fs::path(c.out) / "lr_find.svg").string(), r);
  log << "lr finder: lowest smoothed loss at lr " << fmt("%.3g", r.min_loss_lr) << ", steepest descent at "
      << fmt("%.3g", r.steepest_lr) << (r.diverged ? "; the loss diverged at the end of the sweep" : "") << "\n"
      << "suggested --lr " << fmt("%.3g", r.suggested_lr) << "  (wrote " << (fs::path(c.out) / "lr_find.csv").string()
      << " and lr_find.svg)\n";
  return r;
}

}  // namespace minidl
