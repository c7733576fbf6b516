// JSON presets compiled into the binary (cmake/EmbedPresets.cmake), looked up by name.
#pragma once

#include <span>
#include <string_view>

namespace pipesim {

struct PresetFile {
  std::string_view name;  // file name without .json
  std::string_view text;
};

std::span<const PresetFile> model_preset_files();
std::span<const PresetFile> cluster_preset_files();
std::span<const PresetFile> kernel_rule_files();      // traces/rules
std::span<const PresetFile> hw_profile_files();       // topologies/profiles

}  // namespace pipesim
