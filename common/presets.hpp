// JSON presets compiled into the binary (cmake/EmbedPresets.cmake), looked up by name.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipesim {

struct PresetFile {
  std::string_view name;  // file name without .json
  std::string_view text;
};

std::span<const PresetFile> model_preset_files();
std::span<const PresetFile> cluster_preset_files();
std::span<const PresetFile> kernel_rule_files();      // traces/rules
std::span<const PresetFile> hw_profile_files();       // topologies/profiles

std::vector<std::string> preset_names(std::span<const PresetFile> files);

struct PresetText {
  std::string text;
  std::string source;  // "<name>.json" or the path, for error messages
};
// The preset called `name_or_path`, else the file at that path; throws Error "unknown <what> '<x>': not a
// preset (<names>) nor a file".
PresetText preset_or_file(std::span<const PresetFile> files, std::string_view name_or_path, std::string_view what);

}  // namespace pipesim
