// Every kernel and memory copy this process runs on the GPU, with its name, stream and start/end, from
// CUPTI's activity API: the GPU half of a run's timeline (kernel lanes per stream beside the action spans).
// CUPTI hands its record buffers to plain C callbacks, possibly from a thread of its own; the one recorder a
// process may have is reachable from them through a pointer set while it lives (CUPTI allows one subscriber
// per process, so this is CUPTI's constraint, not a design choice). Several owners (ranks running as threads
// of one process) share it: each tags its operators with ids carrying its owner number, and takes back the
// records of its operators and of the streams they ran on. Times are CUPTI's nanosecond timestamps;
// host_offset_ns() maps them onto the steady clock the executor's spans use.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace pipesim {

struct GpuActivity {
  std::string name;       // the kernel's (demangled by CUPTI) or "memcpy HtoD" / "memcpy DtoH" / "memcpy DtoD"
  std::uint32_t stream = 0;
  std::int64_t start_ns = 0, end_ns = 0;  // CUPTI timestamps
  std::int64_t bytes = 0;                 // copies only
  std::uint64_t op = 0;                   // the operator pushed when it was launched (push_op), 0: none
};

// An operator id: its owner's number in the high bits, so a shared recorder knows whose it is.
inline std::uint64_t op_id(int owner, std::uint64_t count) { return (std::uint64_t(owner) << 40) | count; }
inline int op_owner(std::uint64_t id) { return static_cast<int>(id >> 40); }

class CuptiTrace {
 public:
  // Enables kernel and memcpy activity; throws Error with CUPTI's message when it cannot (no GPU, or
  // another recorder is active).
  CuptiTrace();
  ~CuptiTrace();
  CuptiTrace(const CuptiTrace&) = delete;
  CuptiTrace& operator=(const CuptiTrace&) = delete;

  // A number for a new owner (0, 1, ...).
  int add_owner();
  // The activity recorded since the last call that belongs to `owner`, sorted by start, each with the
  // operator (push_op's id) that was open on the launching thread, when one was: its operators' records and
  // the untagged ones on streams its operators used; with one owner, everything.
  std::vector<GpuActivity> flush(int owner);
  // Kernels and copies launched by this thread until the matching pop_op() belong to operator `id` (> 0),
  // through CUPTI's external correlation records.
  static void push_op(std::uint64_t id);
  static void pop_op();
  // steady_clock (ns since its epoch) minus CUPTI's clock, measured now.
  static std::int64_t host_offset_ns();
  std::uint64_t dropped() const { return dropped_; }

  // For the C callbacks only.
  void take(const std::uint8_t* buffer, std::size_t valid_bytes);

 private:
  std::mutex mutex_;  // CUPTI may deliver buffers from its own thread while an owner flushes
  std::vector<GpuActivity> records_;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> correlations_;  // CUDA call's correlation id -> operator
  std::vector<std::uint32_t> correlation_of_;                           // per record: its launch's correlation id
  std::vector<std::set<std::uint32_t>> streams_;                        // per owner: the streams its operators used
  std::uint64_t dropped_ = 0;
};

}  // namespace pipesim
