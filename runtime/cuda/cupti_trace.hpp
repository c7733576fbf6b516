// Every kernel and memory copy this process runs on the GPU, with its name, stream and start/end, from
// CUPTI's activity API: the GPU half of a run's timeline (kernel lanes per stream beside the action spans).
// CUPTI hands its record buffers to plain C callbacks; the one recorder a process may have is reachable
// from them through a pointer set while it lives (CUPTI allows one subscriber per process, so this is
// CUPTI's constraint, not a design choice). Times are CUPTI's nanosecond timestamps; host_offset_ns() maps
// them onto the steady clock the executor's spans use.
#pragma once

#include <cstdint>
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

class CuptiTrace {
 public:
  // Enables kernel and memcpy activity; throws Error with CUPTI's message when it cannot (no GPU, or
  // another recorder is active).
  CuptiTrace();
  ~CuptiTrace();
  CuptiTrace(const CuptiTrace&) = delete;
  CuptiTrace& operator=(const CuptiTrace&) = delete;

  // The activity recorded since the last call, sorted by start, each with the operator (push_op's id) that
  // was open on the launching thread, when one was.
  std::vector<GpuActivity> flush();
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
  std::vector<GpuActivity> records_;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> correlations_;  // CUDA call's correlation id -> operator
  std::vector<std::uint32_t> correlation_of_;                           // per record: its launch's correlation id
  std::uint64_t dropped_ = 0;
};

}  // namespace pipesim
