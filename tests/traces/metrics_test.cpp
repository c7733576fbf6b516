// compute_metrics on hand-built timelines whose answers are worked out in the comments: busy, idle, exposed
// communication, first start / last end, peaks, P2P bytes and the bubble rate of a 2-rank 1F1B step, EP and
// DP spans that must not count as compute, and parameter copies read off the schedules' chunk shares.
#include <algorithm>
#include <tuple>

#include <gtest/gtest.h>

#include "schedules/registry.hpp"
#include "traces/metrics.hpp"

namespace pipesim {
namespace {

Span span(int rank, Stream stream, const char* action, std::int64_t start_ns, std::int64_t end_ns, std::int64_t bytes = 0,
          const char* label = nullptr) {
  Span s;
  s.rank = rank;
  s.stream = stream;
  s.action = parse_action(action);
  s.start_ns = start_ns;
  s.end_ns = end_ns;
  s.bytes = bytes;
  s.label = label;
  return s;
}

// 1F1B on 2 ranks, 2 micro-batches, lowered by hand: stage r on rank r, one route 0 -> 1.
Schedule hand_1f1b() {
  Schedule s;
  s.name = "1f1b";
  s.ranks = 2;
  s.stages = 2;
  s.microbatches = 2;
  s.stage_to_rank = {0, 1};
  for (auto& row : std::vector<std::vector<const char*>>{
           {"0F0", "0SEND_F0", "0F1", "0SEND_F1", "0RECV_B0", "0B0", "0RECV_B1", "0B1"},
           {"1RECV_F0", "1F0", "1B0", "1SEND_B0", "1RECV_F1", "1F1", "1B1", "1SEND_B1"}}) {
    s.programs.emplace_back();
    for (auto* a : row) s.programs.back().push_back(parse_action(a));
  }
  set_single_route(s);
  return s;
}

// The step, in ns (C = compute, R = RECV wait on the compute stream, P = P2P transfer):
//   rank 0  C 0F0 [100,300]  C 0F1 [300,500]  R 0RECV_B0 [500,900]  C 0B0 [900,1300]
//           R 0RECV_B1 [1300,1500]  C 0B1 [1500,1900]
//           P 0SEND_F0 [300,350] 1000 B   P 0SEND_F1 [500,550] 1000 B
//   rank 1  R 1RECV_F0 [0,350]  C 1F0 [350,550]  C 1B0 [550,850]  R 1RECV_F1 [850,850] (data already there)
//           C 1F1 [850,1050]  C 1B1 [1050,1450]
//           P 1SEND_B0 [850,900] 2000 B   P 1SEND_B1 [1450,1500] 2000 B
Timeline hand_timeline() {
  Timeline t;
  t.schedule = std::make_shared<const Schedule>(hand_1f1b());
  t.spans = {
      span(0, Stream::Compute, "0F0", 100, 300),
      span(0, Stream::Compute, "0F1", 300, 500),
      span(0, Stream::Compute, "0RECV_B0", 500, 900),
      span(0, Stream::Compute, "0B0", 900, 1300),
      span(0, Stream::Compute, "0RECV_B1", 1300, 1500),
      span(0, Stream::Compute, "0B1", 1500, 1900),
      span(0, Stream::P2P, "0SEND_F0", 300, 350, 1000),
      span(0, Stream::P2P, "0SEND_F1", 500, 550, 1000),
      span(1, Stream::Compute, "1RECV_F0", 0, 350),
      span(1, Stream::Compute, "1F0", 350, 550),
      span(1, Stream::Compute, "1B0", 550, 850),
      span(1, Stream::Compute, "1RECV_F1", 850, 850),
      span(1, Stream::Compute, "1F1", 850, 1050),
      span(1, Stream::Compute, "1B1", 1050, 1450),
      span(1, Stream::P2P, "1SEND_B0", 850, 900, 2000),
      span(1, Stream::P2P, "1SEND_B1", 1450, 1500, 2000),
  };
  // Live activations: rank 0 holds two forwards from 300 to 1300; rank 1 at most one.
  t.memory = {
      {0, 100, 1, 1.0e6}, {0, 300, 2, 2.0e6}, {0, 1300, 1, 1.0e6}, {0, 1900, 0, 0},
      {1, 350, 1, 1.5e6}, {1, 850, 0, 0},     {1, 1050, 1, 1.5e6}, {1, 1450, 0, 0},
  };
  return t;
}

TEST(Metrics, HandBuiltTwoRankStep) {
  auto m = compute_metrics(hand_timeline());
  // Makespan: the latest end over all spans, 0B1's 1900.
  EXPECT_EQ(m.makespan_ns, 1900);
  ASSERT_EQ(m.ranks.size(), 2u);
  auto& r0 = m.ranks[0];
  auto& r1 = m.ranks[1];
  EXPECT_EQ(r0.rank, 0);
  EXPECT_EQ(r1.rank, 1);
  // Rank 0 busy: F 200 + 200, B 400 + 400 = 1200; idle 1900 - 1200 = 700.
  EXPECT_EQ(r0.busy_ns, 1200);
  EXPECT_EQ(r0.idle_ns, 700);
  // Exposed communication: the two RECV waits, 400 + 200 = 600.
  EXPECT_EQ(r0.exposed_comm_ns, 600);
  EXPECT_EQ(r0.first_start_ns, 100);
  EXPECT_EQ(r0.last_end_ns, 1900);
  // Rank 1 busy: F 200 + 200, B 300 + 400 = 1100; idle 1900 - 1100 = 800.
  EXPECT_EQ(r1.busy_ns, 1100);
  EXPECT_EQ(r1.idle_ns, 800);
  // Exposed: 1RECV_F0 waited 350, 1RECV_F1 0.
  EXPECT_EQ(r1.exposed_comm_ns, 350);
  // The first compute starts at 350: the RECV wait from 0 is not compute.
  EXPECT_EQ(r1.first_start_ns, 350);
  EXPECT_EQ(r1.last_end_ns, 1450);
  // Peaks of the memory step functions.
  EXPECT_DOUBLE_EQ(r0.peak_activations, 2.0);
  EXPECT_DOUBLE_EQ(r0.peak_activation_bytes, 2.0e6);
  EXPECT_DOUBLE_EQ(r1.peak_activations, 1.0);
  EXPECT_DOUBLE_EQ(r1.peak_activation_bytes, 1.5e6);
  EXPECT_DOUBLE_EQ(m.max_peak_activations(), 2.0);
  EXPECT_EQ(m.max_idle_ns(), 800);
  // P2P bytes: 1000 + 1000 + 2000 + 2000 = 6000.
  EXPECT_EQ(m.p2p_bytes, 6000);
  // Bubble: cost = max(1900 - 100, 1450 - 350) = max(1800, 1100) = 1800; ideal = max(1200, 1100) = 1200;
  // (1800 - 1200) / 1800 = 1/3.
  EXPECT_DOUBLE_EQ(m.bubble_rate, 600.0 / 1800.0);
  // 1F1B: each rank holds one stage whose route has 2 stages, chunk share 2/2 = 1.
  EXPECT_DOUBLE_EQ(r0.parameter_copies, 1.0);
  EXPECT_DOUBLE_EQ(r1.parameter_copies, 1.0);
}

TEST(Metrics, ExpertAndDataParallelSpansAreNotCompute) {
  auto t = hand_timeline();
  // An all-to-all inside 0F1 on the EP stream (with bytes), and a gradient reduce-scatter on each rank after
  // its last backward, rank 1's ending at 2100 after everything else.
  t.spans.push_back(span(0, Stream::EP, "0F1", 350, 450, 5000, "dispatch+combine"));
  t.spans.push_back(span(0, Stream::DP, "0F0", 1900, 2000, 7000, "reduce-scatter"));
  t.spans.push_back(span(1, Stream::DP, "1F0", 1450, 2100, 7000, "reduce-scatter"));
  std::stable_sort(t.spans.begin(), t.spans.end(), [](const Span& a, const Span& b) {
    return std::tie(a.rank, a.stream, a.start_ns) < std::tie(b.rank, b.stream, b.start_ns);
  });
  auto m = compute_metrics(t);
  // The step now ends with rank 1's reduce-scatter at 2100.
  EXPECT_EQ(m.makespan_ns, 2100);
  // Busy and the compute window are unchanged (1200 / 1100; 100..1900 / 350..1450); idle grows with the
  // makespan: 2100 - 1200 = 900, 2100 - 1100 = 1000.
  EXPECT_EQ(m.ranks[0].busy_ns, 1200);
  EXPECT_EQ(m.ranks[1].busy_ns, 1100);
  EXPECT_EQ(m.ranks[0].idle_ns, 900);
  EXPECT_EQ(m.ranks[1].idle_ns, 1000);
  EXPECT_EQ(m.ranks[0].first_start_ns, 100);
  EXPECT_EQ(m.ranks[0].last_end_ns, 1900);
  EXPECT_EQ(m.ranks[1].first_start_ns, 350);
  EXPECT_EQ(m.ranks[1].last_end_ns, 1450);
  // Neither is exposed point-to-point communication, nor P2P bytes.
  EXPECT_EQ(m.ranks[0].exposed_comm_ns, 600);
  EXPECT_EQ(m.ranks[1].exposed_comm_ns, 350);
  EXPECT_EQ(m.p2p_bytes, 6000);
  // The bubble reads compute windows only: still (1800 - 1200) / 1800.
  EXPECT_DOUBLE_EQ(m.bubble_rate, 600.0 / 1800.0);
}

TEST(Metrics, EmptyTimeline) {
  Timeline t;
  t.schedule = std::make_shared<const Schedule>(hand_1f1b());
  auto m = compute_metrics(t);
  EXPECT_EQ(m.makespan_ns, 0);
  EXPECT_EQ(m.bubble_rate, 0.0);  // cost 0: no division
  ASSERT_EQ(m.ranks.size(), 2u);
  EXPECT_EQ(m.ranks[1].busy_ns, 0);
  EXPECT_EQ(m.ranks[1].peak_activations, 0.0);
}

TEST(Metrics, ParameterCopiesFromChunkShares) {
  struct Case {
    const char* name;
    GeneratorOptions options;
    double copies;
  };
  for (auto [name, options, copies] : {
           // One stage per rank on a route of `ranks` stages: share ranks/ranks = 1.
           Case{"1f1b", {2, 4, 2}, 1.0},
           Case{"1f1b", {4, 8, 2}, 1.0},
           // DualPipe: two directions, each a route of `ranks` stages, and every rank holds one stage of
           // each: 2 x (ranks/ranks) = 2.
           Case{"dualpipe", {2, 4, 2}, 2.0},
           Case{"dualpipe", {4, 8, 2}, 2.0},
           // ZB-V: one route of 2·ranks stages, two chunks per rank: 2 x ranks/(2·ranks) = 1.
           Case{"zb-v", {2, 4, 2}, 1.0},
           Case{"zb-v", {4, 8, 2}, 1.0},
           // Interleaved with 2 chunks per rank: one route of 2·ranks stages, 2 x 1/2 = 1.
           Case{"interleaved-1f1b", {2, 4, 2}, 1.0},
       }) {
    Timeline t;
    t.schedule = std::make_shared<const Schedule>(generate_schedule(name, options));
    auto m = compute_metrics(t);
    ASSERT_EQ(m.ranks.size(), static_cast<std::size_t>(options.ranks)) << name;
    for (auto& r : m.ranks) EXPECT_DOUBLE_EQ(r.parameter_copies, copies) << name << " p=" << options.ranks << " rank " << r.rank;
  }
}

}  // namespace
}  // namespace pipesim
