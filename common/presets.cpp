// Looking presets up by name, or falling back to a file (see presets.hpp).
#include "common/presets.hpp"

#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/atomic_file.hpp"
#include "common/error.hpp"

namespace pipesim {

std::vector<std::string> preset_names(std::span<const PresetFile> files) {
  std::vector<std::string> names;
  for (auto& file : files) names.emplace_back(file.name);
  return names;
}

PresetText preset_or_file(std::span<const PresetFile> files, std::string_view name_or_path, std::string_view what) {
  for (auto& file : files)
    if (file.name == name_or_path) return {std::string(file.text), std::string(name_or_path) + ".json"};
  if (!input_exists(std::filesystem::path(name_or_path)))
    throw Error(fmt::format("unknown {} '{}': not a preset ({}) nor a file", what, name_or_path,
                            fmt::join(preset_names(files), ", ")));
  return {read_file(std::string(name_or_path)), std::string(name_or_path)};
}

}  // namespace pipesim
