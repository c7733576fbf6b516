// Static facts of a schedule read off its programs, without timing: what `pipesim schedule --compare`
// prints. In-flight counts walk each program in order: a forward adds its stage's activations, the pass
// that ends the backward (B, or W after I) releases them.
// Parameter copies are in the same units: DualPipe holds 2, ZB-V and interleaved 1.
#pragma once

#include <vector>

#include "schedules/schedule.hpp"

namespace pipesim {

struct ScheduleSummary {
  int ranks = 0, stages = 0, microbatches = 0;
  int stages_per_rank = 0;            // max chunks one rank holds
  double parameter_copies = 0;        // max over ranks, in 1F1B stages (1/ranks of the model)
  std::size_t compute_actions = 0;    // over all ranks; an overlapped pair counts once
  std::size_t overlapped_pairs = 0;
  std::size_t split_backwards = 0;    // (stage, micro-batch) backwards run as I then W
  // [rank] -> most forwards whose backward has not finished, in 1F1B stages (a chunk on a route of n stages
  // counts ranks/n), so schedules that cut the model finer compare fairly.
  std::vector<double> peak_in_flight;
};

ScheduleSummary summarize(const Schedule& schedule);

// [rank] -> parameters held, in 1F1B stages: the chunk shares of the stages the rank holds.
std::vector<double> parameter_copies(const Schedule& schedule);

}  // namespace pipesim
