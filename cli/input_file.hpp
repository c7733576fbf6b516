// The check for options that name an input file: CLI11's ExistingFile on the command line, and in the web
// server (a Capture installed, common/capture.hpp) the request's uploads, so the server never looks at its
// own disk.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "common/atomic_file.hpp"
#include "common/capture.hpp"

namespace pipesim::cli {

inline CLI::Validator existing_file() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        if (Capture::current()) return input_exists(path) ? "" : "no uploaded file named '" + path + "'";
        return CLI::ExistingFile(path);
      },
      "FILE");
}

}  // namespace pipesim::cli
