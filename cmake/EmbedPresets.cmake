# Embeds every JSON preset of a folder into a generated C++ source, so the binary finds its presets
# wherever it runs. embed_presets(TARGET FOLDER FUNCTION) defines
#   std::span<const pipesim::PresetFile> FUNCTION();   (declared in common/presets.hpp)
function(embed_presets target folder function)
  file(GLOB files CONFIGURE_DEPENDS "${folder}/*.json")
  list(SORT files)
  # Re-run the embedding when a preset's text changes, not only when files come or go.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${files})
  set(body "")
  foreach(file IN LISTS files)
    get_filename_component(name "${file}" NAME_WLE)
    file(READ "${file}" text)
    string(APPEND body "    {\"${name}\", R\"PIPESIM_PRESET(${text})PIPESIM_PRESET\"},\n")
  endforeach()
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${function}.cpp")
  file(WRITE "${out}.new"
       "// Generated from ${folder} by cmake/EmbedPresets.cmake; do not edit.\n"
       "#include \"common/presets.hpp\"\n#include <array>\nnamespace pipesim {\n"
       "std::span<const PresetFile> ${function}() {\n  static const PresetFile files[] = {\n${body}"
       "    {\"\", \"\"}};\n  return {files, sizeof(files) / sizeof(files[0]) - 1};\n}\n}  // namespace pipesim\n")
  file(COPY_FILE "${out}.new" "${out}" ONLY_IF_DIFFERENT)
  target_sources(${target} PRIVATE "${out}")
endfunction()
