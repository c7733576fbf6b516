// Running a pipesim command inside this process, for the web server: the same CLI11 parser and the same
// command code as on the command line, with a Capture (common/capture.hpp) installed so that inputs come
// from uploads and every output lands in memory. Only the commands that compute without side effects are
// offered (schedule, simulate, sweep, calibrate, compare): never `run` (it would start MPI) or `serve`.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/capture.hpp"

namespace pipesim::cli {

struct CommandResult {
  bool ok = false;
  bool bad_input = false;  // the request's fault (400), else pipesim's (500)
  std::string error;       // what the CLI would print after "pipesim: error: "
};

// argv without the program name: {"simulate", "--model", "deepseek-v3", ...}.
CommandResult run_in_process(const std::vector<std::string>& argv, Capture& capture);

// A request's options as command-line words: {"pp": 16, "recompute": true, "vary": ["pp=8,16"]} gives
// --pp 16 --recompute --vary pp=8,16. Keys are option names without dashes (letters, digits, '-');
// false and null are left out. Throws Error naming a key or value that cannot be an option.
std::vector<std::string> options_to_words(const nlohmann::json& options);

}  // namespace pipesim::cli
