// Handing the process to a sibling program (see sibling.hpp).
#include "cli/sibling.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <unistd.h>

namespace pipesim::cli {

void exec_sibling(const char* program, char** argv) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return;
  auto sibling = self.parent_path() / program;
  if (!std::filesystem::exists(sibling, ec)) return;
  execv(sibling.c_str(), argv);
  fmt::print(stderr, "pipesim: warning: could not start {} ({})\n", sibling.string(), std::strerror(errno));
}

}  // namespace pipesim::cli
