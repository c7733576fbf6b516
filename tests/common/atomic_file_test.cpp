// Atomic writes: a folder is refused with a message that says so, a symbolic link is written through (the
// file it names changes, the link stays), a character device is written straight to, a failed rename says
// why (not "Success"), and temporaries left by a killed process of this user are cleaned up.
#include "common/atomic_file.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <filesystem>
#include <fstream>
#include <functional>

#include "common/error.hpp"

namespace pipesim {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const char* name) {
  auto dir = fs::temp_directory_path() / ("pipesim-atomic-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(AtomicFile, AFolderIsRefusedByName) {
  auto dir = scratch("folder");
  EXPECT_EQ(message_of([&] { write_file_atomically(dir, "x"); }),
            "cannot write '" + dir.string() + "': it is a folder; give a file name");
  EXPECT_EQ(message_of([&] { read_file(dir); }), "'" + dir.string() + "' is a folder, not a file");
}

TEST(AtomicFile, SymbolicLinksAreWrittenThrough) {
  auto dir = scratch("link");
  std::ofstream(dir / "real.json") << "old";
  fs::create_symlink("real.json", dir / "link.json");
  write_file_atomically(dir / "link.json", "new");
  EXPECT_TRUE(fs::is_symlink(dir / "link.json"));
  EXPECT_EQ(read_file(dir / "real.json"), "new");
}

TEST(AtomicFile, CharacterDevicesAreWrittenStraightTo) {
  write_file_atomically("/dev/null", "discarded");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST(AtomicFile, StaleTemporariesOfDeadProcessesAreRemoved) {
  auto dir = scratch("stale");
  auto dead = dir / "out.json.tmp.999999999";  // above any pid_max: no such process
  auto mine = dir / ("out.json.tmp." + std::to_string(::getppid()));  // a live process (our parent)
  std::ofstream(dead) << "half";
  std::ofstream(mine) << "busy";
  write_file_atomically(dir / "out.json", "whole");
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(mine));
  EXPECT_EQ(read_file(dir / "out.json"), "whole");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);  // out.json and mine
}

// SIGTERM while the temporary is being written: the handler removes it and the process still dies of the
// signal; neither the temporary nor the target is left. A child writes 256 MB; the parent waits until the
// temporary appears, then signals. (If the write wins the race, the run is retried with twice the bytes.)
TEST(AtomicFile, SigtermRemovesTheTemporary) {
  auto dir = scratch("sigterm");
  auto target = dir / "big.json";
  for (std::size_t bytes = 256u << 20; bytes <= (2048u << 20); bytes *= 2) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      std::string contents(bytes, 'x');
      write_file_atomically(target, contents);
      _exit(0);
    }
    auto temp = dir / ("big.json.tmp." + std::to_string(child));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!fs::exists(temp) && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(child, &status, WNOHANG) == child) break;  // finished before we saw it
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    bool caught = fs::exists(temp);
    if (caught) kill(child, SIGTERM);
    int status = 0;
    waitpid(child, &status, 0);
    if (!caught || !WIFSIGNALED(status)) {  // the write won: clean up and try a longer one
      fs::remove(target);
      continue;
    }
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
    EXPECT_FALSE(fs::exists(temp));
    EXPECT_FALSE(fs::exists(target));
    return;
  }
  GTEST_SKIP() << "every write finished before the signal could reach it";
}

TEST(AtomicFile, AMissingFolderIsNamed) {
  EXPECT_EQ(message_of([] { write_file_atomically("/nonexistent-pipesim/x.json", "x"); }),
            "cannot write '/nonexistent-pipesim/x.json': the folder does not exist or is not writable");
}

}  // namespace
}  // namespace pipesim
