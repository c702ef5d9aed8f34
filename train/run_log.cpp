#include "train/run_log.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tensor/error.h"
#include "train/text_io.h"

namespace minidl {

namespace {

const char* kCsvHeader = "epoch,phase,train_loss,train_acc,val_loss,val_acc,lr,seconds,images_per_sec,train_images,val_images\n";

nlohmann::json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},       {"phase", r.phase},         {"train_loss", r.train_loss},
          {"train_acc", r.train_acc}, {"val_loss", r.val_loss},   {"val_acc", r.val_acc},
          {"lr", r.lr},             {"seconds", r.seconds},     {"images_per_sec", r.images_per_sec},
          {"train_images", r.train_images}, {"val_images", r.val_images}};
}

EpochRecord from_json(const nlohmann::json& j) {
  EpochRecord r;
  j.at("epoch").get_to(r.epoch);
  j.at("phase").get_to(r.phase);
  j.at("train_loss").get_to(r.train_loss);
  j.at("train_acc").get_to(r.train_acc);
  j.at("val_loss").get_to(r.val_loss);
  j.at("val_acc").get_to(r.val_acc);
  j.at("lr").get_to(r.lr);
  j.at("seconds").get_to(r.seconds);
  j.at("images_per_sec").get_to(r.images_per_sec);
  j.at("train_images").get_to(r.train_images);
  j.at("val_images").get_to(r.val_images);
  return r;
}

std::string csv_line(const EpochRecord& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%d,%s,%.6f,%.6f,%.6f,%.6f,%.6g,%.2f,%.2f,%lld,%lld\n", r.epoch, r.phase.c_str(),
                r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.lr, r.seconds, r.images_per_sec,
                (long long)r.train_images, (long long)r.val_images);
  return buf;
}

std::string jsonl_path(const std::string& dir) { return (std::filesystem::path(dir) / "metrics.jsonl").string(); }
std::string csv_path(const std::string& dir) { return (std::filesystem::path(dir) / "metrics.csv").string(); }

}  // namespace

void append_epoch_record(const std::string& out_dir, const EpochRecord& r) {
  append_text(jsonl_path(out_dir), to_json(r).dump() + "\n");
  const std::string csv = csv_path(out_dir);
  const bool fresh = !std::filesystem::exists(csv) || std::filesystem::file_size(csv) == 0;
  append_text(csv, (fresh ? std::string(kCsvHeader) : std::string()) + csv_line(r));
}

std::vector<EpochRecord> read_epoch_records(const std::string& out_dir) {
  const std::string path = jsonl_path(out_dir);
  std::vector<EpochRecord> out;
  if (!std::filesystem::exists(path)) return out;
  std::istringstream in(read_text_file(path));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      out.push_back(from_json(nlohmann::json::parse(line)));
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat(path, ": line ", n, " is not a valid epoch record: ", e.what()));
    }
  }
  return out;
}

void truncate_epoch_records(const std::string& out_dir, int first_dropped) {
  std::string jsonl, csv;
  const auto records = read_epoch_records(out_dir);
  for (const EpochRecord& r : records)
    if (r.epoch < first_dropped) {
      jsonl += to_json(r).dump() + "\n";
      csv += csv_line(r);
    }
  write_text_atomic(jsonl_path(out_dir), jsonl);
  write_text_atomic(csv_path(out_dir), csv.empty() ? std::string() : kCsvHeader + csv);
}

}  // namespace minidl
