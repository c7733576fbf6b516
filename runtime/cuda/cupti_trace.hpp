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
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/activity_pool.hpp"
#include "runtime/op_log.hpp"

namespace pipesim {

class CuptiTrace {
 public:
  // Enables kernel, memcpy, API and external-correlation activity (thread ids: the system's); throws Error
  // with CUPTI's message when it cannot (no GPU, or another CUPTI client such as a profiler is attached).
  CuptiTrace();
  ~CuptiTrace();
  CuptiTrace(const CuptiTrace&) = delete;
  CuptiTrace& operator=(const CuptiTrace&) = delete;
  // The process's recorder, made on first use: the devices of one process (ranks as threads) share it, and
  // it goes when the last of them does.
  static std::shared_ptr<CuptiTrace> shared();

  // A number for a new owner (0, 1, ...) launching from the calling thread.
  int add_owner();
  // The calling thread launches for `owner` too; until it calls remove_thread.
  void add_thread(int owner);
  void remove_thread(int owner);
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

// Each operator a stage opens is pushed to CUPTI as an external correlation id, so the kernels it launches
// come back tagged with it; its work waits here for take_kernels().
class CuptiOpLog final : public OpLog {
 public:
  void set_owner(int owner) { owner_ = owner; }
  void begin(const char*, const OpWork& work) override {
    if (depth_ > 0) {
      ++depth_;
      return;
    }
    auto id = ++count_;
    CuptiTrace::push_op(id);  // throws before anything is counted open
    work_.emplace(id, work);
    depth_ = 1;
  }
  void end() override {
    if (--depth_ == 0) CuptiTrace::pop_op();
  }
  // The work of operator `id` (nullptr when unknown).
  const OpWork* find(std::uint64_t id) const {
    auto it = work_.find(id);
    return it == work_.end() ? nullptr : &it->second;
  }
  void clear() { work_.clear(); }
  int owner() const { return owner_; }

 private:
  int depth_ = 0, owner_ = 0;
  std::uint64_t count_ = 0;
  std::map<std::uint64_t, OpWork> work_;
};

}  // namespace pipesim
