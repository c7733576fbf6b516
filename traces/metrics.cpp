// Metrics from a Timeline (see metrics.hpp).
#include "traces/metrics.hpp"

#include <algorithm>

#include "schedules/summary.hpp"

namespace pipesim {

std::int64_t Metrics::max_idle_ns() const {
  std::int64_t most = 0;
  for (auto& r : ranks) most = std::max(most, r.idle_ns);
  return most;
}

double Metrics::max_peak_activations() const {
  double most = 0;
  for (auto& r : ranks) most = std::max(most, r.peak_activations);
  return most;
}

Metrics compute_metrics(const Timeline& t) {
  Metrics m;
  auto ranks = static_cast<std::size_t>(t.schedule->ranks);
  m.ranks.resize(ranks);
  std::vector<bool> seen(ranks);
  auto copies = parameter_copies(*t.schedule);
  for (std::size_t r = 0; r < ranks; ++r) {
    m.ranks[r].rank = static_cast<int>(r);
    m.ranks[r].parameter_copies = copies[r];
  }
  for (auto& span : t.spans) {
    auto& rm = m.ranks[static_cast<std::size_t>(span.rank)];
    m.makespan_ns = std::max(m.makespan_ns, span.end_ns);
    if (span.stream != Stream::Compute) {
      if (span.stream == Stream::P2P) m.p2p_bytes += span.bytes;
      continue;
    }
    if (!span.action.is_compute()) {
      rm.exposed_comm_ns += span.end_ns - span.start_ns;
      continue;
    }
    rm.busy_ns += span.end_ns - span.start_ns;
    if (!seen[static_cast<std::size_t>(span.rank)] || span.start_ns < rm.first_start_ns) rm.first_start_ns = span.start_ns;
    rm.last_end_ns = std::max(rm.last_end_ns, span.end_ns);
    seen[static_cast<std::size_t>(span.rank)] = true;
  }
  for (auto& sample : t.memory) {
    auto& rm = m.ranks[static_cast<std::size_t>(sample.rank)];
    rm.peak_activations = std::max(rm.peak_activations, sample.activations);
    rm.peak_activation_bytes = std::max(rm.peak_activation_bytes, sample.bytes);
  }
  std::int64_t cost = 0, ideal = 0;
  for (auto& rm : m.ranks) {
    rm.idle_ns = m.makespan_ns - rm.busy_ns;
    cost = std::max(cost, rm.last_end_ns - rm.first_start_ns);
    ideal = std::max(ideal, rm.busy_ns);
  }
  m.bubble_rate = cost > 0 ? static_cast<double>(cost - ideal) / static_cast<double>(cost) : 0.0;
  return m;
}

}  // namespace pipesim
