// Static schedule summary (see summary.hpp).
#include "schedules/summary.hpp"

#include <algorithm>

namespace pipesim {

ScheduleSummary summarize(const Schedule& s) {
  ScheduleSummary out;
  out.ranks = s.ranks;
  out.stages = s.stages;
  out.microbatches = s.microbatches;
  std::vector<int> held(static_cast<std::size_t>(s.ranks));
  for (auto r : s.stage_to_rank) ++held[static_cast<std::size_t>(r)];
  out.stages_per_rank = held.empty() ? 0 : *std::max_element(held.begin(), held.end());
  for (auto& program : s.programs) {
    int live = 0, peak = 0;
    for (auto& action : program) {
      if (!action.is_compute()) continue;
      ++out.compute_actions;
      if (action.op == Op::OverlapFB) ++out.overlapped_pairs;
      for (auto& pass : action.passes()) {
        if (pass.op == Op::F) ++live;
        if (pass.op == Op::B || pass.op == Op::W) --live;
        if (pass.op == Op::I) ++out.split_backwards;
        peak = std::max(peak, live);
      }
    }
    out.peak_in_flight.push_back(peak);
  }
  return out;
}

}  // namespace pipesim
