// Who ran which GPU activity, kept apart from CUPTI so it can be tested without a GPU (runtime/cuda/
// cupti_trace.cpp feeds it). CUPTI delivers three kinds of records, in any order and in any buffer: the
// kernel or copy (times, stream, the correlation id of the CUDA call that launched it), the API record of
// that call (the launching thread), and an external-correlation record when an operator was pushed around
// the call (the operator's id). Ranks running as threads of one process share the one recorder CUPTI allows,
// so each registers as an owner with its thread, and takes back the activity its thread launched, each
// kernel tagged with its operator when it had one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pipesim {

struct GpuActivity {
  std::string name;       // the kernel's (demangled by CUPTI) or "memcpy HtoD" / "memcpy DtoH" / "memcpy DtoD"
  std::uint32_t stream = 0;
  std::int64_t start_ns = 0, end_ns = 0;  // CUPTI timestamps
  std::int64_t bytes = 0;                 // copies only
  std::uint32_t correlation = 0;          // the launching CUDA call's correlation id
  std::uint64_t op = 0;                   // the operator pushed around that call, 0: none (or not known yet)
};

class ActivityPool {
 public:
  // An owner launching from thread `thread` (the system thread id CUPTI reports); numbered 0, 1, ...
  int add_owner(std::uint32_t thread);
  // Another thread launching for `owner` (an overlapped pair's second thread: runtime/pair_runner.hpp), and
  // its end (a later thread may get its id).
  void add_thread(int owner, std::uint32_t thread);
  void remove_thread(int owner, std::uint32_t thread);
  void add_activity(GpuActivity activity);
  void add_operator(std::uint32_t correlation, std::uint64_t op);  // an external-correlation record
  void add_call(std::uint32_t correlation, std::uint32_t thread);  // an API record

  // `owner`'s activity, sorted by start: everything it launched that has arrived, tagged with its operator.
  // With one owner, every activity. Call it once the owner's work has finished: its calls still unmatched
  // then launched nothing and go. What no owner can claim (launched by another thread, or whose call never
  // arrived) and other correlations nothing matched are dropped once they have waited through two takes of
  // every owner, so the pool stays as small as the activity in flight.
  std::vector<GpuActivity> take(int owner);
  std::size_t pending() const { return activities_.size() + operators_.size() + calls_.size(); }

 private:
  template <class V>
  struct Aged {
    V value;
    int age = 0;  // takes it has waited through
  };
  std::vector<std::vector<std::uint32_t>> owners_;  // owner -> its threads
  std::vector<Aged<GpuActivity>> activities_;
  std::map<std::uint32_t, Aged<std::uint64_t>> operators_;  // correlation -> operator
  std::map<std::uint32_t, Aged<std::uint32_t>> calls_;      // correlation -> thread
};

}  // namespace pipesim
