// Whole-file reads and atomic writes (temporary file in the same folder, then rename), so an interrupted
// or failed run never leaves a half-written output behind.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <unistd.h>

#include "common/error.hpp"

namespace pipesim {

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path.string() + "' for reading");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  auto target = path.has_parent_path() ? path : std::filesystem::path(".") / path;
  auto temp = target;
  temp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write '" + path.string() + "': the folder does not exist or is not writable");
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw Error("failed while writing '" + path.string() + "' (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, target, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    throw Error("cannot replace '" + path.string() + "': " + ec.message());
  }
}

// A command's report: to standard output, or atomically to `path` when one is given.
inline void print_or_write(std::string_view text, const std::filesystem::path& path) {
  if (path.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  write_file_atomically(path, text);
}

}  // namespace pipesim
