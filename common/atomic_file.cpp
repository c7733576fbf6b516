// Reads and atomic writes (see atomic_file.hpp).
#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/capture.hpp"
#include "common/error.hpp"

namespace pipesim {
namespace {

// The temporary being written, for the signal handler: a signal may only touch lock-free state, so the
// path lives in a fixed buffer published through an atomic flag (one write at a time per process).
char temp_path[4096];
std::atomic<bool> temp_live{false};

extern "C" void remove_temp_and_die(int signal) {
  if (temp_live.load()) ::unlink(temp_path);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

void guard_signals() {
  static bool installed = false;  // once per process; the handler only reads the two variables above
  if (installed) return;
  installed = true;
  for (int s : {SIGINT, SIGTERM}) {
    struct sigaction old {};
    sigaction(s, nullptr, &old);
    if (old.sa_handler == SIG_DFL) std::signal(s, remove_temp_and_die);
  }
}

// "<file>.tmp.<pid>" files of this user whose process is gone: what a killed earlier run left.
void remove_stale_temporaries(const std::filesystem::path& target) {
  std::error_code ec;
  auto folder = target.parent_path();
  auto prefix = target.filename().string() + ".tmp.";
  for (auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    auto digits = name.substr(prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    pid_t pid = static_cast<pid_t>(std::stol(digits));
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0 || st.st_uid != ::getuid()) continue;
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace

std::string read_file(const std::filesystem::path& path) {
  if (auto* capture = Capture::current()) {
    auto it = capture->inputs.find(path.string());
    if (it == capture->inputs.end()) throw Error("no uploaded file named '" + path.string() + "'");
    return it->second;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error("'" + path.string() + "' is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path.string() + "' for reading");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool input_exists(const std::filesystem::path& path) {
  if (auto* capture = Capture::current()) return capture->inputs.count(path.string()) > 0;
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

void print_or_write(std::string_view text, const std::filesystem::path& path) {
  if (path.empty()) {
    if (auto* capture = Capture::current())
      capture->standard_output += text;
    else
      std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  write_file_atomically(path, text);
}

void write_file_atomically(const std::filesystem::path& path, std::string_view contents) {
  if (auto* capture = Capture::current()) {
    capture->outputs[path.string()] = std::string(contents);
    return;
  }
  std::error_code ec;
  auto target = path.has_parent_path() ? path : std::filesystem::path(".") / path;
  // Through a symbolic link: the file it names (relative to the link's folder), so the link survives.
  for (int hops = 0; std::filesystem::is_symlink(target, ec); ++hops) {
    if (hops == 40) throw Error("cannot write '" + path.string() + "': too many symbolic links");
    auto next = std::filesystem::read_symlink(target, ec);
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  auto status = std::filesystem::status(target, ec);
  if (std::filesystem::is_directory(status))
    throw Error("cannot write '" + path.string() + "': it is a folder; give a file name");
  if (std::filesystem::is_character_file(status)) {  // /dev/null, /dev/stdout: write straight through
    std::ofstream out(target, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!out.flush()) throw Error("failed while writing '" + path.string() + "'");
    return;
  }
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
    throw Error("cannot write '" + path.string() + "': it is not a regular file");
  remove_stale_temporaries(target);
  auto temp = target;
  temp += ".tmp." + std::to_string(::getpid());
  if (temp.native().size() >= sizeof(temp_path)) throw Error("cannot write '" + path.string() + "': the path is too long");
  guard_signals();
  std::strcpy(temp_path, temp.c_str());
  temp_live.store(true);
  auto forget = [&] {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    temp_live.store(false);
  };
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) {
      temp_live.store(false);
      throw Error("cannot write '" + path.string() + "': the folder does not exist or is not writable");
    }
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      out.close();
      forget();
      throw Error("failed while writing '" + path.string() + "' (disk full?)");
    }
  }
  std::filesystem::rename(temp, target, ec);
  if (ec) {
    auto reason = ec.message();  // before cleaning up, which resets ec
    forget();
    throw Error("cannot replace '" + path.string() + "': " + reason);
  }
  temp_live.store(false);
}

void check_output_folders(const std::vector<std::filesystem::path>& paths) {
  if (Capture::current()) return;  // nothing goes to disk
  for (auto& path : paths) {
    if (path.empty()) continue;
    auto folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec))
      throw Error("cannot write '" + path.string() + "': the folder '" + folder.string() +
                  "' does not exist; nothing was written");
    if (::access(folder.c_str(), W_OK) != 0)
      throw Error("cannot write '" + path.string() + "': the folder '" + folder.string() +
                  "' is not writable; nothing was written");
  }
}

void write_files_atomically(const std::vector<std::pair<std::filesystem::path, std::string>>& outputs) {
  std::vector<std::filesystem::path> paths;
  for (auto& [path, text] : outputs) paths.push_back(path);
  check_output_folders(paths);
  std::vector<std::string> written;
  for (auto& [path, text] : outputs) {
    if (path.empty()) continue;
    try {
      write_file_atomically(path, text);
    } catch (const Error& e) {
      std::string done;
      for (auto& w : written) done += (done.empty() ? "" : ", ") + w;
      throw Error(std::string(e.what()) + (written.empty() ? "; nothing was written" : "; already written: " + done));
    }
    written.push_back(path.string());
  }
  for (auto& [path, text] : outputs)
    if (path.empty()) print_or_write(text, path);
}

}  // namespace pipesim
