#include "models/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace minidl {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using Json = nlohmann::json;

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

size_t file_dtype_size(const std::string& d) {
  if (d == "F32") return 4;
  if (d == "F64" || d == "I64") return 8;
  if (d == "F16" || d == "BF16") return 2;
  return 0;
}

struct RawEntry {
  std::string name, dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("safetensors: " + path + ": " + what);
}

std::vector<RawEntry> parse_header(const std::string& path, const std::string& text, uint64_t data_size,
                                   std::map<std::string, std::string>& metadata) {
  Json header;
  try {
    header = Json::parse(text);
  } catch (const Json::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  std::vector<RawEntry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(path, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(path, "__metadata__ entry '" + m.key() + "' is not a string");
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (name.empty()) fail(path, "a tensor has an empty name");
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail(path, where + "entry needs dtype, shape and data_offsets");
    RawEntry e;
    e.name = name;
    if (!v["dtype"].is_string()) fail(path, where + "dtype is not a string");
    e.dtype = v["dtype"].get<std::string>();
    if (file_dtype_size(e.dtype) == 0)
      fail(path, where + "dtype " + e.dtype + " is not supported (F32, F64, F16, BF16, I64 are)");
    const Json& shape = v["shape"];
    if (!shape.is_array()) fail(path, where + "shape is not an array");
    uint64_t count = 1;
    for (const Json& d : shape) {
      if (!d.is_number_unsigned()) fail(path, where + "shape has a non-integer or negative size");
      const uint64_t n = d.get<uint64_t>();
      if (n == 0) fail(path, where + "has a zero-sized dimension (minidl has no empty tensors)");
      if (count > (uint64_t(1) << 48) / n) fail(path, where + "shape is absurdly large");
      count *= n;
      e.shape.push_back(static_cast<int64_t>(n));
    }
    const Json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path, where + "data_offsets must be two non-negative integers");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      fail(path, where + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     "] fall outside the data section of " + std::to_string(data_size) + " bytes");
    const uint64_t need = count * file_dtype_size(e.dtype);
    if (e.end - e.begin != need)
      fail(path, where + "data_offsets hold " + std::to_string(e.end - e.begin) + " bytes but dtype " + e.dtype +
                     " x shape " + shape_str(e.shape) + " needs " + std::to_string(need));
    entries.push_back(std::move(e));
  }
  // The data section must be covered exactly once: sorted by offset, each tensor starts
  // where the previous one ended, and the last ends at the end of the file.
  std::sort(entries.begin(), entries.end(), [](const RawEntry& a, const RawEntry& b) { return a.begin < b.begin; });
  uint64_t at = 0;
  for (const RawEntry& e : entries) {
    if (e.begin < at) fail(path, "tensor '" + e.name + "' overlaps the tensor before it in the data section");
    if (e.begin > at)
      fail(path, "tensor '" + e.name + "' starts at byte " + std::to_string(e.begin) + ", leaving a hole after byte " +
                     std::to_string(at));
    at = e.end;
  }
  if (at != data_size)
    fail(path, "data section has " + std::to_string(data_size - at) + " trailing bytes that no tensor uses");
  return entries;
}

// Converts a tensor's raw bytes into a minidl tensor of the matching compute dtype.
Tensor decode(const RawEntry& e, std::FILE* f, const std::string& path) {
  const uint64_t nbytes = e.end - e.begin;
  auto read_into = [&](void* dst) {
    if (std::fread(dst, 1, nbytes, f) != nbytes) fail(path, "tensor '" + e.name + "': file ended while reading its data");
  };
  if (e.dtype == "F32" || e.dtype == "F64" || e.dtype == "I64") {
    const DType dt = e.dtype == "F32" ? DType::Float32 : e.dtype == "F64" ? DType::Float64 : DType::Int64;
    Tensor t = Tensor::empty(e.shape, dt);
    read_into(t.raw_data());  // straight into the aligned storage: no staging copy
    return t;
  }
  std::vector<uint16_t> half(nbytes / 2);
  read_into(half.data());
  Tensor t = Tensor::empty(e.shape, DType::Float32);
  float* out = t.data<float>();
  const bool bf16 = e.dtype == "BF16";
  for (size_t i = 0; i < half.size(); ++i) out[i] = bf16 ? bfloat16_to_float(half[i]) : half_to_float(half[i]);
  return t;
}

}  // namespace

float bfloat16_to_float(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: shift the mantissa up until its leading 1 is the implicit bit.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | (uint32_t(112 - e) << 23) | ((mant & 0x3ff) << 13);
  }
  return std::bit_cast<float>(bits);
}

Tensor SafetensorsContents::find(const std::string& name) const {
  for (const auto& e : tensors)
    if (e.name == name) return e.tensor;
  return Tensor();
}

SafetensorsContents load_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "no such file");
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read its size: " + ec.message());
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (size < 8) fail(path, "file is " + std::to_string(size) + " bytes, too short for the 8-byte header length");
  uint64_t header_len = 0;
  if (std::fread(&header_len, 8, 1, f.get()) != 1) fail(path, "cannot read the header length");
  if (header_len > kSafetensorsMaxHeader)
    fail(path, "header length " + std::to_string(header_len) + " exceeds the " +
                   std::to_string(kSafetensorsMaxHeader) + "-byte cap (not a safetensors file?)");
  if (header_len > size - 8)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the " + std::to_string(size) +
                   "-byte file (truncated?)");
  std::string text(header_len, '\0');
  if (std::fread(text.data(), 1, header_len, f.get()) != header_len) fail(path, "cannot read the header");
  if (text.empty() || text[0] != '{') fail(path, "header does not start with '{' (not a safetensors file?)");

  SafetensorsContents out;
  std::vector<RawEntry> entries = parse_header(path, text, size - 8 - header_len, out.metadata);
  for (const RawEntry& e : entries) out.tensors.push_back({e.name, decode(e, f.get(), path), e.dtype});
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t at = 0;
  std::vector<Tensor> contiguous;
  for (const auto& [name, t] : tensors) {
    MINIDL_CHECK(!name.empty() && name != "__metadata__", "save_safetensors: ", path, ": invalid tensor name '", name,
                 "'");
    MINIDL_CHECK(!header.contains(name), "save_safetensors: ", path, ": tensor name '", name, "' appears twice");
    MINIDL_CHECK(t.defined(), "save_safetensors: ", path, ": tensor '", name, "' is undefined");
    const char* dt = t.dtype() == DType::Float32 ? "F32" : t.dtype() == DType::Float64 ? "F64"
                     : t.dtype() == DType::Int64 ? "I64" : nullptr;
    MINIDL_CHECK(dt != nullptr, "save_safetensors: ", path, ": tensor '", name, "' has dtype ", dtype_name(t.dtype()),
                 ", which the writer does not support");
    const uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", dt}, {"shape", t.shape()}, {"data_offsets", {at, at + nbytes}}};
    at += nbytes;
    // A tensor on the GPU is copied to the host first: the file is the same either way.
    const Tensor host = t.device() == Device::CPU ? t : t.detach().to(Device::CPU);
    contiguous.push_back(host.is_contiguous() ? host : host.detach().contiguous());
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data section starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    File f(std::fopen(tmp.c_str(), "wb"));
    MINIDL_CHECK(f != nullptr, "save_safetensors: cannot create ", tmp, ": ", std::strerror(errno));
    const uint64_t len = text.size();
    bool ok = std::fwrite(&len, 8, 1, f.get()) == 1 && std::fwrite(text.data(), 1, text.size(), f.get()) == text.size();
    for (const Tensor& t : contiguous) {
      const size_t nbytes = size_t(t.numel()) * dtype_size(t.dtype());
      ok = ok && std::fwrite(t.raw_data(), 1, nbytes, f.get()) == nbytes;
    }
    ok = ok && std::fflush(f.get()) == 0;
    if (!ok) {
      f.reset();
      std::remove(tmp.c_str());
      throw Error("save_safetensors: writing " + tmp + " failed (disk full?); " + path + " was left untouched");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  MINIDL_CHECK(!ec, "save_safetensors: cannot rename ", tmp, " to ", path, ": ", ec.message());
}

}  // namespace minidl
