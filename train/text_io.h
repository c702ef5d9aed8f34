// Small text helpers the run files share: whole-file writes that never leave a half-written
// file under the real name, appends, CSV and HTML escaping, base64.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minidl {

// Writes `text` to "<path>.tmp", then renames it over `path`. Errors name the path.
void write_text_atomic(const std::string& path, const std::string& text);
// Appends `text` to `path` (created when missing) and flushes.
void append_text(const std::string& path, const std::string& text);
// The whole file; a missing or unreadable file is an error naming it.
std::string read_text_file(const std::string& path);
std::vector<uint8_t> read_binary_file(const std::string& path);

// &, <, >, " and ' as entities.
std::string html_escape(const std::string& s);
std::string base64_encode(const uint8_t* data, size_t size);

}  // namespace minidl
