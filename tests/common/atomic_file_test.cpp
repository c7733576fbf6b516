// Atomic writes: a folder is refused with a message that says so, a symbolic link is written through (the
// file it names changes, the link stays), a character device is written straight to, a failed rename says
// why (not "Success"), and temporaries left by a killed process of this user are cleaned up.
#include "common/atomic_file.hpp"

#include <gtest/gtest.h>

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

TEST(AtomicFile, AMissingFolderIsNamed) {
  EXPECT_EQ(message_of([] { write_file_atomically("/nonexistent-pipesim/x.json", "x"); }),
            "cannot write '/nonexistent-pipesim/x.json': the folder does not exist or is not writable");
}

}  // namespace
}  // namespace pipesim
