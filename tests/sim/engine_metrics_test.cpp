// The metrics-only path of the engine (simulate_metrics) against compute_metrics() of the stored timeline
// (simulate), field by field and exactly, on every registry schedule at many sizes with random stage costs,
// uneven stages, memory, stragglers and slow shared links (transfers queued FIFO): thousands of cases.
#include <gtest/gtest.h>

#include <random>

#include "schedules/registry.hpp"
#include "sim/engine.hpp"
#include "traces/metrics.hpp"

namespace pipesim {
namespace {

void expect_same(const Metrics& a, const Metrics& b, const std::string& what) {
  ASSERT_EQ(a.makespan_ns, b.makespan_ns) << what;
  ASSERT_EQ(a.bubble_rate, b.bubble_rate) << what;
  ASSERT_EQ(a.p2p_bytes, b.p2p_bytes) << what;
  ASSERT_EQ(a.ranks.size(), b.ranks.size()) << what;
  for (std::size_t r = 0; r < a.ranks.size(); ++r) {
    auto &x = a.ranks[r], &y = b.ranks[r];
    ASSERT_EQ(x.busy_ns, y.busy_ns) << what << " rank " << r;
    ASSERT_EQ(x.idle_ns, y.idle_ns) << what << " rank " << r;
    ASSERT_EQ(x.exposed_comm_ns, y.exposed_comm_ns) << what << " rank " << r;
    ASSERT_EQ(x.first_start_ns, y.first_start_ns) << what << " rank " << r;
    ASSERT_EQ(x.last_end_ns, y.last_end_ns) << what << " rank " << r;
    ASSERT_EQ(x.peak_activations, y.peak_activations) << what << " rank " << r;
    ASSERT_EQ(x.peak_activation_bytes, y.peak_activation_bytes) << what << " rank " << r;
    ASSERT_EQ(x.parameter_copies, y.parameter_copies) << what << " rank " << r;
  }
}

CostSpec random_costs(const Schedule& s, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> ns(1, 5'000'000), bytes(0, 1 << 26);
  std::uniform_real_distribution<double> unit(0, 1);
  CostSpec spec;
  spec.stages.resize(static_cast<std::size_t>(s.stages));
  for (auto& st : spec.stages) {
    st.F_ns = ns(rng);
    st.I_ns = ns(rng);
    st.W_ns = ns(rng);
    if (unit(rng) < 0.2) st.B_ns = ns(rng);
    st.activation_bytes = bytes(rng);
    st.activation_memory = bytes(rng);
  }
  spec.p2p.latency_ns = unit(rng) < 0.5 ? 0 : ns(rng) / 10;
  spec.p2p.bandwidth_bytes_per_ns = unit(rng) < 0.3 ? 0 : 1 + 100 * unit(rng);  // slow links queue transfers
  spec.rank_slowdown.assign(static_cast<std::size_t>(s.ranks), 1.0);
  if (unit(rng) < 0.3) {
    spec.rank_slowdown[static_cast<std::size_t>(rng() % static_cast<std::uint64_t>(s.ranks))] = 1 + 2 * unit(rng);
  }
  spec.w_memory_fraction = unit(rng);
  return spec;
}

TEST(EngineMetrics, TheMetricsOnlyPathEqualsTheTimelinesMetricsOnRandomCases) {
  std::mt19937_64 rng(20261204);
  int cases = 0;
  for (auto& info : schedule_registry())
    for (int ranks : {1, 2, 3, 4, 6, 8})
      for (int microbatches : {1, 2, 3, 4, 5, 8, 12, 16, 24}) {
        GeneratorOptions options{ranks, microbatches, 2};
        if (info.supports(options)) continue;  // a problem with this size
        auto schedule = info.generate(options);
        for (int trial = 0; trial < 12; ++trial) {
          auto costs = random_costs(schedule, rng);
          auto what = std::string(info.name) + " " + std::to_string(ranks) + "x" + std::to_string(microbatches) +
                      " trial " + std::to_string(trial);
          expect_same(simulate_metrics(schedule, costs), compute_metrics(simulate(schedule, costs)), what);
          ++cases;
        }
      }
  EXPECT_GT(cases, 2000);
}

}  // namespace
}  // namespace pipesim
