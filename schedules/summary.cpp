// Static schedule summary (see summary.hpp).
#include "schedules/summary.hpp"

#include <algorithm>

namespace pipesim {

ScheduleSummary summarize(const Schedule& s) {
  ScheduleSummary out;
  out.ranks = s.ranks;
  out.stages = s.stages;
  out.microbatches = s.microbatches;
  std::vector<double> share(static_cast<std::size_t>(s.stages), 1.0);  // of a 1F1B stage
  for (auto& route : s.routes)
    for (auto stage : route) share[static_cast<std::size_t>(stage)] = static_cast<double>(s.ranks) / static_cast<double>(route.size());
  std::vector<int> held(static_cast<std::size_t>(s.ranks));
  std::vector<double> params(static_cast<std::size_t>(s.ranks));
  for (std::size_t st = 0; st < s.stage_to_rank.size(); ++st) {
    ++held[static_cast<std::size_t>(s.stage_to_rank[st])];
    params[static_cast<std::size_t>(s.stage_to_rank[st])] += share[st];
  }
  out.stages_per_rank = held.empty() ? 0 : *std::max_element(held.begin(), held.end());
  out.parameter_copies = params.empty() ? 0 : *std::max_element(params.begin(), params.end());
  for (auto& program : s.programs) {
    double live = 0, peak = 0;
    for (auto& action : program) {
      if (!action.is_compute()) continue;
      ++out.compute_actions;
      if (action.op == Op::OverlapFB) ++out.overlapped_pairs;
      for (auto& pass : action.passes()) {
        if (pass.op == Op::F) live += share[static_cast<std::size_t>(pass.stage)];
        if (pass.op == Op::B || pass.op == Op::W) live -= share[static_cast<std::size_t>(pass.stage)];
        if (pass.op == Op::I) ++out.split_backwards;
        peak = std::max(peak, live);
      }
    }
    out.peak_in_flight.push_back(peak);
  }
  return out;
}

}  // namespace pipesim
