#include "train/text_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tensor/error.h"

namespace minidl {

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MINIDL_CHECK(f.good(), "cannot create ", tmp, ": ", std::strerror(errno));
    f.write(text.data(), std::streamsize(text.size()));
    f.flush();
    MINIDL_CHECK(f.good(), "cannot write ", tmp, ": ", std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  MINIDL_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
}

void append_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::app);
  MINIDL_CHECK(f.good(), "cannot open ", path, " for appending: ", std::strerror(errno));
  f.write(text.data(), std::streamsize(text.size()));
  f.flush();
  MINIDL_CHECK(f.good(), "cannot append to ", path, ": ", std::strerror(errno));
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MINIDL_CHECK(f.good(), "cannot read ", path, ": ", std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> read_binary_file(const std::string& path) {
  const std::string s = read_text_file(path);
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(const uint8_t* data, size_t size) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t n = uint32_t(data[i]) << 16 | (i + 1 < size ? uint32_t(data[i + 1]) << 8 : 0) |
                       (i + 2 < size ? uint32_t(data[i + 2]) : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[n & 63] : '=';
  }
  return out;
}

}  // namespace minidl
