// In-memory files for commands run inside the web server (cli/serve_cmd.cpp): while a Capture is installed
// on a thread, the commands that thread runs read their input files from it (uploads, by name; the disk is
// never read) and write every output there (files and standard output), never to disk. The CLI and the
// server thus run one code path; the server only chooses where bytes come from and go. A sweep's workers
// report progress through it and stop when the request is cancelled.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>

namespace pipesim {

class Capture {
 public:
  explicit Capture(std::map<std::string, std::string> inputs = {});
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // The capture installed on this thread, or null (the CLI).
  static Capture* current();

  std::map<std::string, std::string> inputs;   // file name -> contents
  std::map<std::string, std::string> outputs;  // file name -> contents
  std::string standard_output;
  // Called (from worker threads, one at a time) as work completes; may be empty.
  std::function<void(std::size_t done, std::size_t total, const std::string& row)> progress;
  // Set by whoever may cancel the work (the server, when the client goes away); may be null.
  const std::atomic<bool>* cancel = nullptr;
  bool cancelled() const { return cancel && cancel->load(); }

 private:
  Capture* previous_;
};

}  // namespace pipesim
