// PyTorch profiler (Kineto) traces in: each GPU kernel classified (kernel_classes.hpp), attributed to the
// CPU annotation that launched it (correlation id -> launching runtime call -> innermost enclosing
// user annotation), and to a pipeline action where an annotation names one (`0F3`, PyTorch pipelining's
// `PP:0F3`, or a user's pattern). Per stream: busy time, gaps, and the compute stream's stalls while
// communication runs. Actions become the same RunRecord the runtime and the simulator write, so
// `pipesim compare` reads an imported run like any other. See docs/trace-import.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "traces/kernel_classes.hpp"
#include "schedules/action.hpp"
#include "traces/kineto_reader.hpp"
#include "traces/timeline_file.hpp"

namespace pipesim {

// A user's "REGEX=KIND" (KIND: F, I, W, B or FB): an annotation matching REGEX is an action of that kind;
// capture group 1 gives the stage and group 2 the micro-batch when present, otherwise stage 0 and the
// count of earlier matches of the rule on the rank.
struct ActionPattern {
  std::string text;
  std::regex regex;
  Op op = Op::F;
};
ActionPattern parse_action_pattern(const std::string& text);  // Error names the text

struct ImportOptions {
  KernelRules rules = default_kernel_rules();
  std::vector<ActionPattern> actions;
};

struct ClassTotals {
  std::int64_t kernels = 0;
  std::int64_t time_ns = 0;
};

struct ImportedKernel {
  std::int64_t start_ns = 0, end_ns = 0;  // on the common clock: 0 = the earliest GPU activity of any rank
  int stream = -1;
  int op_class = -1;           // index into ImportedRun::classes; -1 when no rule matched
  std::uint32_t name = 0;      // in the rank's trace names
  int phase = -1;              // index into ImportedRank::phases, -1: launched outside any annotation
  int action = -1;             // index into ImportedRank::actions
};

// One annotation instance that launched kernels ("attn(F)" the third time).
struct PhaseInstance {
  std::string name;
  std::int64_t start_ns = 0, end_ns = 0;  // its kernels' first start and last end on the GPU
  std::map<std::string, ClassTotals, std::less<>> classes;
};

struct ObservedAction {
  Action action;
  std::int64_t start_ns = 0, end_ns = 0;  // its kernels on the GPU (its CPU range when it launched none)
  int step = -1;                          // N of the ProfilerStep#N around it; -1 outside any
};

struct StreamStats {
  int stream = -1;
  bool communication = false;    // most of its kernel time is comm.* kernels
  std::int64_t kernels = 0, busy_ns = 0, first_ns = 0, last_ns = 0;
  std::int64_t gaps_ns = 0;      // idle between its first and last kernel
};

struct ImportedRank {
  int rank = 0;
  std::string source;
  std::string device;
  int device_sms = 0;
  std::vector<std::string> names;       // the trace's interned names
  std::vector<ImportedKernel> kernels;  // sorted by start
  std::vector<PhaseInstance> phases;
  std::vector<ObservedAction> actions;  // sorted by start
  std::vector<StreamStats> streams;
  std::int64_t compute_busy_ns = 0, comm_busy_ns = 0;  // unions over compute / communication streams
  std::int64_t overlap_ns = 0;          // compute and communication both busy
  std::int64_t stall_ns = 0;            // no compute stream busy while communication runs, inside the compute span
};

struct ImportedRun {
  std::vector<ImportedRank> ranks;            // by rank
  std::vector<std::string> classes;           // the operator classes kernels refer to
  std::map<std::string, std::int64_t> unmatched;  // kernel names no rule classified, with their counts
};

// Ranks come from each trace's distributedInfo, else from the file name (rank3, rank_3, rank-3),
// else from the order given; two traces of one rank are an error.
ImportedRun import_traces(std::vector<KinetoTrace> traces, const ImportOptions& options);

// The run as a timeline file: the schedule the ranks executed (validated and lowered, as a runtime run's
// header), one step per ProfilerStep. Throws Error when no annotation names an action (use --action) or
// when the actions do not form a valid schedule.
RunRecord to_run_record(const ImportedRun& run);

}  // namespace pipesim
