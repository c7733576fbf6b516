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

MetricsAccumulator::MetricsAccumulator(const Schedule& schedule) {
  auto ranks = static_cast<std::size_t>(schedule.ranks);
  m_.ranks.resize(ranks);
  seen_.assign(ranks, 0);
  auto copies = parameter_copies(schedule);
  for (std::size_t r = 0; r < ranks; ++r) {
    m_.ranks[r].rank = static_cast<int>(r);
    m_.ranks[r].parameter_copies = copies[r];
  }
}

void MetricsAccumulator::add(const Span& span) {
  if (span.stream != Stream::Compute) {
    if (span.stream == Stream::P2P) add_transfer(span.end_ns, span.bytes);
    else m_.makespan_ns = std::max(m_.makespan_ns, span.end_ns);
    return;
  }
  if (span.action.is_compute()) add_compute(span.rank, span.start_ns, span.end_ns);
  else add_wait(span.rank, span.start_ns, span.end_ns);
}

Metrics MetricsAccumulator::finish() && {
  std::int64_t cost = 0, ideal = 0;
  for (auto& rm : m_.ranks) {
    rm.idle_ns = m_.makespan_ns - rm.busy_ns;
    cost = std::max(cost, rm.last_end_ns - rm.first_start_ns);
    ideal = std::max(ideal, rm.busy_ns);
  }
  m_.bubble_rate = cost > 0 ? static_cast<double>(cost - ideal) / static_cast<double>(cost) : 0.0;
  return std::move(m_);
}

Metrics compute_metrics(const Timeline& t) {
  MetricsAccumulator metrics(*t.schedule);
  for (auto& span : t.spans) metrics.add(span);
  for (auto& sample : t.memory) metrics.add(sample);
  return std::move(metrics).finish();
}

}  // namespace pipesim
