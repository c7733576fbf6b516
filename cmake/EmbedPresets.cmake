# Embeds files of a folder into a generated C++ source, so the binary finds them wherever it runs.
#   embed_presets(TARGET FOLDER FUNCTION)  every *.json, named without ".json" (presets)
#   embed_assets(TARGET FOLDER FUNCTION)   every *.html, *.js, *.css, *.svg, named in full (the web page)
# each defining std::span<const pipesim::PresetFile> FUNCTION();   (declared in common/presets.hpp or by
# its user). Files are embedded as raw string literals.
function(pipesim_embed target folder function keep_extension)
  set(files "")
  foreach(pattern IN LISTS ARGN)
    file(GLOB matched CONFIGURE_DEPENDS "${folder}/${pattern}")
    list(APPEND files ${matched})
  endforeach()
  list(SORT files)
  # Re-run the embedding when a file's text changes, not only when files come or go.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${files})
  set(body "")
  foreach(file IN LISTS files)
    if(keep_extension)
      get_filename_component(name "${file}" NAME)
    else()
      get_filename_component(name "${file}" NAME_WLE)
    endif()
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

function(embed_presets target folder function)
  pipesim_embed(${target} ${folder} ${function} FALSE "*.json")
endfunction()

function(embed_assets target folder function)
  pipesim_embed(${target} ${folder} ${function} TRUE "*.html" "*.js" "*.css" "*.svg")
endfunction()
