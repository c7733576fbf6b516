// A whole run of a lowered schedule, what `pipesim run` does on every rank and the in-process tests do on
// threads: measure the links, align the clocks, run `steps` timed training steps and gather each step's
// timeline on rank 0, and with `check` compare the first step with the single-process reference step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/comm.hpp"
#include "runtime/device.hpp"
#include "runtime/reference.hpp"
#include "schedules/schedule.hpp"
#include "traces/timeline_file.hpp"

namespace pipesim {

struct RunOptions {
  int steps = 3;       // timed training steps, at least 1
  bool check = false;  // compare the first step with reference_step()
  double timeout_s = 300;  // a blocking wait longer than this fails (Comm::set_timeout); 0: never
  bool overlap_pairs = false;  // overlapped pairs' halves take turns at the all-to-alls (Executor)
};

struct RunResult {
  // Rank 0 only: per step, the first replica's spans on rank 0's clock, each step starting at 0.
  std::vector<std::vector<Span>> steps;
  std::vector<std::vector<KernelSpan>> kernels;  // per step, when the device records GPU kernels; else empty
  LinkFigures links;
  std::optional<CheckResult> check;  // rank 0 only, with options.check
  std::string device;                // what ran the stages ("cpu", "cuda:0 (64 of its 132 SMs)")
};

// Called by every rank of `comm` (MPI ranks = pipeline ranks × spec.ep, or threads); `device` makes the
// stages this rank holds. Throws Error on any rank that fails; a caller with several ranks then aborts
// the others through comm.abort().
template <class T>
RunResult run_pipeline(const Schedule& lowered, const WorkloadSpec& spec, Comm& comm, Device<T>& device,
                       const RunOptions& options);

}  // namespace pipesim
