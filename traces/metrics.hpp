// The numbers users judge a schedule by, computed from a Timeline (simulated or measured):
// makespan; per rank busy (compute), idle (makespan - busy), exposed communication (time the compute
// stream waited on a transfer after both ends were ready), peak activations; and the bubble rate as the
// ZeroBubble paper defines it: (cost - ideal) / cost, where cost is the longest execution span over ranks
// (last end minus first start) and ideal the largest per-rank compute time, m(T_F+T_B+T_W) under uniform costs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "traces/timeline.hpp"

namespace pipesim {

struct RankMetrics {
  int rank = 0;
  std::int64_t busy_ns = 0;
  std::int64_t idle_ns = 0;
  std::int64_t exposed_comm_ns = 0;
  std::int64_t first_start_ns = 0, last_end_ns = 0;
  double peak_activations = 0;       // stage micro-batch units
  double peak_activation_bytes = 0;
  double parameter_copies = 0;       // in 1F1B stages (1/ranks of the model); DualPipe holds 2
};

struct Metrics {
  std::int64_t makespan_ns = 0;
  double bubble_rate = 0;
  std::int64_t p2p_bytes = 0;
  std::vector<RankMetrics> ranks;
  std::int64_t max_idle_ns() const;
  double max_peak_activations() const;
};

Metrics compute_metrics(const Timeline& timeline);

// compute_metrics() one span and one memory sample at a time: the timeline's metrics without storing the
// timeline (the simulator's metrics-only path, sim/engine.hpp). Spans and samples may come in any order.
class MetricsAccumulator {
 public:
  explicit MetricsAccumulator(const Schedule& schedule);
  void add(const Span& span);
  void add(const MemorySample& sample) { add_memory(sample.rank, sample.activations, sample.bytes); }
  // What add(span) does for each kind of span, for a caller that has no Span (sim/metrics_pass.hpp).
  void add_compute(int rank, std::int64_t start_ns, std::int64_t end_ns) {
    auto& rm = m_.ranks[static_cast<std::size_t>(rank)];
    m_.makespan_ns = std::max(m_.makespan_ns, end_ns);
    rm.busy_ns += end_ns - start_ns;
    if (!seen_[static_cast<std::size_t>(rank)] || start_ns < rm.first_start_ns) rm.first_start_ns = start_ns;
    rm.last_end_ns = std::max(rm.last_end_ns, end_ns);
    seen_[static_cast<std::size_t>(rank)] = true;
  }
  // The compute stream waiting for a transfer (a RECV's span).
  void add_wait(int rank, std::int64_t start_ns, std::int64_t end_ns) {
    m_.makespan_ns = std::max(m_.makespan_ns, end_ns);
    m_.ranks[static_cast<std::size_t>(rank)].exposed_comm_ns += end_ns - start_ns;
  }
  void add_transfer(std::int64_t end_ns, std::int64_t bytes) {
    m_.makespan_ns = std::max(m_.makespan_ns, end_ns);
    m_.p2p_bytes += bytes;
  }
  void add_memory(int rank, double activations, double bytes) {
    auto& rm = m_.ranks[static_cast<std::size_t>(rank)];
    rm.peak_activations = std::max(rm.peak_activations, activations);
    rm.peak_activation_bytes = std::max(rm.peak_activation_bytes, bytes);
  }
  Metrics finish() &&;

 private:
  Metrics m_;
  std::vector<char> seen_;  // per rank: a compute span has come
};

}  // namespace pipesim
