// Static schedule summary (see summary.hpp).
#include "schedules/summary.hpp"

#include <algorithm>

namespace pipesim {

std::vector<double> parameter_copies(const Schedule& s) {
  std::vector<double> params(static_cast<std::size_t>(s.ranks));
  for (int st = 0; st < s.stages; ++st)
    params[static_cast<std::size_t>(s.stage_to_rank[static_cast<std::size_t>(st)])] += s.chunk_share(st);
  return params;
}

ScheduleSummary summarize(const Schedule& s) {
  ScheduleSummary out;
  out.ranks = s.ranks;
  out.stages = s.stages;
  out.microbatches = s.microbatches;
  std::vector<double> share(static_cast<std::size_t>(s.stages));  // of a 1F1B stage
  for (int st = 0; st < s.stages; ++st) share[static_cast<std::size_t>(st)] = s.chunk_share(st);
  std::vector<int> held(static_cast<std::size_t>(s.ranks));
  for (auto rank : s.stage_to_rank) ++held[static_cast<std::size_t>(rank)];
  auto params = parameter_copies(s);
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
