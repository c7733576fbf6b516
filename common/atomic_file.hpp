// Whole-file reads and atomic writes (temporary file in the same folder, then rename), so an interrupted
// or failed run never leaves a half-written output behind. A write through a symbolic link replaces the
// file the link points to (the link stays); a write to a character device (/dev/null, /dev/stdout) goes
// straight to it; a folder is refused. The temporary is removed if SIGINT or SIGTERM arrives while it
// exists, and temporaries of the same file left by processes of this user that no longer run are removed.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pipesim {

// With a Capture installed on this thread (common/capture.hpp), reads come from its inputs and writes go to its
// outputs instead of the disk.
std::string read_file(const std::filesystem::path& path);
// Whether read_file(path) would find a file.
bool input_exists(const std::filesystem::path& path);

void write_file_atomically(const std::filesystem::path& path, std::string_view contents);

// Several outputs of one command: every target's folder is checked first, so a missing folder writes
// nothing; if a write still fails, the error lists the files already written. Entries with an empty path
// go to standard output, after the files.
void write_files_atomically(const std::vector<std::pair<std::filesystem::path, std::string>>& outputs);
// The check write_files_atomically() makes first, for commands that must refuse before long work: each
// non-empty path's folder exists and is writable, else Error naming it.
void check_output_folders(const std::vector<std::filesystem::path>& paths);

// A command's report: to standard output, or atomically to `path` when one is given.
void print_or_write(std::string_view text, const std::filesystem::path& path);

}  // namespace pipesim
