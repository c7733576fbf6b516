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
#include <vector>

#include "runtime/activity_pool.hpp"

namespace pipesim {

class CuptiTrace {
 public:
  // Enables kernel, memcpy, API and external-correlation activity (thread ids: the system's); throws Error
  // with CUPTI's message when it cannot (no GPU, or another CUPTI client such as a profiler is attached).
  CuptiTrace();
  ~CuptiTrace();
  CuptiTrace(const CuptiTrace&) = delete;
  CuptiTrace& operator=(const CuptiTrace&) = delete;

  // A number for a new owner (0, 1, ...) launching from the calling thread.
  int add_owner();
  // What `owner`'s thread launched, recorded since its last call (ActivityPool::take): call it once that
  // work has finished on the GPU, so its records are complete.
  std::vector<GpuActivity> flush(int owner);
  // Kernels and copies launched by this thread until the matching pop_op() belong to operator `id` (> 0),
  // through CUPTI's external correlation records. push_op throws Error when CUPTI refuses; pop_op never
  // throws (it runs in destructors) and reports a failure on standard error.
  static void push_op(std::uint64_t id);
  static void pop_op() noexcept;
  // steady_clock (ns since its epoch) minus CUPTI's clock, measured now.
  static std::int64_t host_offset_ns();
  std::uint64_t dropped() const { return dropped_; }

  // For the C callbacks only.
  void take(const std::uint8_t* buffer, std::size_t valid_bytes);

 private:
  void stop() noexcept;  // disables everything, delivers what is left, and detaches from the callbacks
  std::mutex flushing_;  // one flush at a time: CUPTI's forced flush and the pool's take together
  std::mutex mutex_;     // the pool: CUPTI may deliver buffers from its own thread while an owner flushes
  ActivityPool pool_;
  std::uint64_t dropped_ = 0;
};

}  // namespace pipesim
