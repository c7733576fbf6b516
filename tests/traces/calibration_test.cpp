// Calibration and comparison on synthetic run records whose answers are worked out in the comments:
// per-stage medians over the steps after the warm-up, fused-B stages split evenly by calibrated_costs,
// DualPipe pairs and their overlap slowdown, JSON round trips of records and calibrations (values and the
// lowered programs), a CSV-imported schedule simulated back from its calibration, compare()'s makespan
// error, bubbles and deviations, and the errors malformed files give.
#include <algorithm>
#include <functional>
#include <initializer_list>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "schedules/csv.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"
#include "sim/engine.hpp"
#include "traces/calibration.hpp"

namespace pipesim {
namespace {

using Duration = std::function<std::int64_t(const Action&)>;

// Each rank's program back to back from start[rank]: compute actions and (with `comm`) RECV waits on the
// compute stream, each lasting duration(action); with `comm` a SEND is a 50 ns transfer of 4096 bytes on the
// P2P stream, linked to its RECV by a flow id, costing the compute stream nothing. Sorted (rank, stream, start).
std::vector<Span> lay_out(const Schedule& s, const Duration& duration, const std::vector<std::int64_t>& start,
                          bool comm = true) {
  std::vector<Span> out;
  for (int r = 0; r < s.ranks; ++r) {
    auto t = start[static_cast<std::size_t>(r)];
    for (auto& a : s.programs[static_cast<std::size_t>(r)]) {
      Span span;
      span.rank = r;
      span.action = a;
      span.start_ns = t;
      if (a.is_compute() || a.op == Op::RecvF || a.op == Op::RecvB) {
        if (!a.is_compute() && !comm) continue;
        span.end_ns = t + duration(a);
        t = span.end_ns;
        if (!a.is_compute()) {
          auto from = a.op == Op::RecvF ? s.stage_before(a.stage(), a.microbatch()) : s.stage_after(a.stage(), a.microbatch());
          span.peer = s.stage_to_rank[static_cast<std::size_t>(from)];
          span.flow = a.microbatch();
        }
      } else {
        if (!comm) continue;
        span.stream = Stream::P2P;
        span.end_ns = t + 50;
        span.bytes = 4096;
        span.peer = 1 - r;
        span.flow = a.microbatch();
      }
      out.push_back(span);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Span& a, const Span& b) {
    return std::tie(a.rank, a.stream, a.start_ns) < std::tie(b.rank, b.stream, b.start_ns);
  });
  return out;
}

RunRecord record_for(const Schedule& lowered) {
  RunRecord r;
  r.schedule = lowered;
  r.source = "measured";
  r.workload = {{"model", "tiny"}, {"layers", 4}};
  r.links.p2p_latency_ns = 15000;
  r.links.p2p_bandwidth_GBps = 25;
  r.links.activation_bytes = 4 << 20;
  r.links.all_to_all_GBps = 0;
  return r;
}

void expect_same_schedule(const Schedule& a, const Schedule& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.ranks, b.ranks);
  EXPECT_EQ(a.stages, b.stages);
  EXPECT_EQ(a.microbatches, b.microbatches);
  EXPECT_EQ(a.stage_to_rank, b.stage_to_rank);
  EXPECT_EQ(a.routes, b.routes);
  EXPECT_EQ(a.route_of, b.route_of);
  ASSERT_EQ(a.programs.size(), b.programs.size());
  for (std::size_t r = 0; r < a.programs.size(); ++r) {
    ASSERT_EQ(a.programs[r].size(), b.programs[r].size()) << "rank " << r;
    for (std::size_t i = 0; i < a.programs[r].size(); ++i)
      EXPECT_EQ(a.programs[r][i], b.programs[r][i])
          << "rank " << r << " action " << i << ": " << to_string(a.programs[r][i]) << " vs " << to_string(b.programs[r][i]);
  }
}

void expect_same_calibration(const Calibration& a, const Calibration& b) {
  expect_same_schedule(a.schedule, b.schedule);
  EXPECT_EQ(a.steps_used, b.steps_used);
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (std::size_t s = 0; s < a.stages.size(); ++s) {
    EXPECT_EQ(a.stages[s].F_ns, b.stages[s].F_ns) << "stage " << s;
    EXPECT_EQ(a.stages[s].I_ns, b.stages[s].I_ns) << "stage " << s;
    EXPECT_EQ(a.stages[s].W_ns, b.stages[s].W_ns) << "stage " << s;
    EXPECT_EQ(a.stages[s].B_ns, b.stages[s].B_ns) << "stage " << s;
    EXPECT_EQ(a.stages[s].FB_ns, b.stages[s].FB_ns) << "stage " << s;
  }
  EXPECT_EQ(a.links.p2p_latency_ns, b.links.p2p_latency_ns);
  EXPECT_EQ(a.links.p2p_bandwidth_GBps, b.links.p2p_bandwidth_GBps);
  EXPECT_EQ(a.links.activation_bytes, b.links.activation_bytes);
  EXPECT_EQ(a.overlap_slowdown, b.overlap_slowdown);
  EXPECT_EQ(a.links.all_to_all_GBps, b.links.all_to_all_GBps);
}

// Calls `f`, which must throw Error with every one of `parts` in its message.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string message = e.what();
    for (auto& part : parts) EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

// 1F1B on 2 ranks, 4 micro-batches, three steps. Stage bases b: stage 0 F 1000, B 3001; stage 1 F 1200,
// B 2501 (odd, so the even split shows its rounding). Per (stage, op) the four micro-batches take
//   step 0 (warm-up): 10b each
//   step 1: b-10, b, b, b        step 2: b, b, b+10, 3b
// so steps 1..2 give the sorted eight [b-10, b, b, b, b, b, b+10, 3b]: both middle values are b, the median
// is b under any convention (the mean would be 1.25b). Counting the warm-up too would give twelve
// [b-10, b x5, b+10, 3b, 10b x4] whose upper median is b+10. RECV waits last 777 ns and transfers sit on the
// P2P stream: neither may enter a median.
std::int64_t one_f_one_b_ns(int step, const Action& a) {
  if (!a.is_compute()) return 777;
  std::int64_t b = a.stage() == 0 ? (a.op == Op::F ? 1000 : 3001) : (a.op == Op::F ? 1200 : 2501);
  if (step == 0) return 10 * b;
  if (step == 1) return a.microbatch() == 0 ? b - 10 : b;
  return a.microbatch() == 2 ? b + 10 : a.microbatch() == 3 ? 3 * b : b;
}

RunRecord one_f_one_b_record(int steps) {
  auto record = record_for(lower(generate_schedule("1f1b", {2, 4, 2})));
  for (int k = 0; k < steps; ++k)
    record.steps.push_back(lay_out(record.schedule, [k](const Action& a) { return one_f_one_b_ns(k, a); }, {0, 500}));
  return record;
}

TEST(Calibration, MediansOverStepsAfterWarmup) {
  auto c = calibrate(one_f_one_b_record(3));
  EXPECT_EQ(c.steps_used, 2);  // steps 1 and 2; step 0 is warm-up
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_EQ(c.stages[0].F_ns, 1000);
  EXPECT_EQ(c.stages[0].B_ns, 3001);
  EXPECT_EQ(c.stages[1].F_ns, 1200);
  EXPECT_EQ(c.stages[1].B_ns, 2501);
  for (auto& s : c.stages) {
    // 1F1B only ran fused backwards and no pairs.
    EXPECT_EQ(s.I_ns, std::nullopt);
    EXPECT_EQ(s.W_ns, std::nullopt);
    EXPECT_EQ(s.FB_ns, std::nullopt);
  }
  EXPECT_EQ(c.overlap_slowdown, 0.0);
  // The microbenchmark is carried over as measured, and so is the run header.
  EXPECT_EQ(c.links.p2p_latency_ns, 15000.0);
  EXPECT_EQ(c.links.p2p_bandwidth_GBps, 25.0);
  EXPECT_EQ(c.links.activation_bytes, 4 << 20);
  expect_same_schedule(c.schedule, lower(generate_schedule("1f1b", {2, 4, 2})));
}

TEST(Calibration, SingleStepIsUsed) {
  // With one step there is nothing to drop: step 0 alone, [10b x4], median 10b.
  auto c = calibrate(one_f_one_b_record(1));
  EXPECT_EQ(c.steps_used, 1);
  EXPECT_EQ(c.stages[0].F_ns, 10'000);
  EXPECT_EQ(c.stages[1].B_ns, 25'010);
}

TEST(Calibration, FusedBackwardSplitsEvenly) {
  auto costs = calibrated_costs(calibrate(one_f_one_b_record(3)), 2);
  ASSERT_EQ(costs.stages.size(), 2u);
  // Stage 0: B 3001 -> I = 3001/2 = 1500, W = 3001 - 1500 = 1501. Stage 1: B 2501 -> I 1250, W 1251.
  EXPECT_EQ(costs.stages[0].F_ns, 1000);
  EXPECT_EQ(costs.stages[0].B_ns, 3001);
  EXPECT_EQ(costs.stages[0].I_ns, 1500);
  EXPECT_EQ(costs.stages[0].W_ns, 1501);
  EXPECT_EQ(costs.stages[1].F_ns, 1200);
  EXPECT_EQ(costs.stages[1].B_ns, 2501);
  EXPECT_EQ(costs.stages[1].I_ns, 1250);
  EXPECT_EQ(costs.stages[1].W_ns, 1251);
  EXPECT_EQ(costs.stages[0].FB_ns, std::nullopt);
  EXPECT_EQ(costs.stages[0].activation_bytes, 4 << 20);
  // The link: 15000 ns, 25 GB/s = 25 bytes/ns; no straggler.
  EXPECT_EQ(costs.p2p.latency_ns, 15000);
  EXPECT_EQ(costs.p2p.bandwidth_bytes_per_ns, 25.0);
  EXPECT_EQ(costs.rank_slowdown, (std::vector<double>{1.0, 1.0}));
}

// DualPipe on 2 ranks, 4 micro-batches (stage_to_rank 0,1,1,0; routes [0,1] and [2,3]):
//   rank 0: 0F0 3F2 0F1 3B2 (3F3;0B0)OVERLAP_F_B 3B3 0I1 0W1  (+ SEND/RECV)
//   rank 1: 2F2 1F0 2F3 1B0 (1F1;2B2)OVERLAP_F_B 1B1 2I3 2W3
// Stand-alone passes, every measured step:
//   stage 0: F 100, I 60, W 40 (its only B runs inside a pair, keyed by the forward half: B stays empty)
//   stage 1: F 120, B 240      stage 2: F 110, I 70, W 50      stage 3: F 130, B 260
// Pairs over steps 1..3 (step 0 is warm-up, everything x10):
//   (3F3;0B0): 184, 207, 207 -> FB of stage 3 = 207. Halves apart: F3 130 + stage 0's I+W 100 = 230;
//              ratios 0.8, 0.9, 0.9
//   (1F1;2B2): 216, 288, 216 -> FB of stage 1 = 216. Halves apart: F1 120 + stage 2's I+W 120 = 240;
//              ratios 0.9, 1.2, 0.9
// Overlap slowdown: the six ratios sorted [0.8, 0.9, 0.9, 0.9, 0.9, 1.2], median 0.9 (mean 0.95).
std::int64_t dualpipe_ns(int step, const Action& a) {
  static constexpr std::int64_t F[] = {100, 120, 110, 130}, I[] = {60, 0, 70, 0}, W[] = {40, 0, 50, 0},
                                B[] = {0, 240, 0, 260};
  static constexpr std::int64_t pair3[] = {0, 184, 207, 207}, pair1[] = {0, 216, 288, 216};
  auto s = static_cast<std::size_t>(a.stage());
  auto k = static_cast<std::size_t>(step);
  std::int64_t ns = 0;
  switch (a.op) {
    case Op::F: ns = F[s]; break;
    case Op::I: ns = I[s]; break;
    case Op::W: ns = W[s]; break;
    case Op::B: ns = B[s]; break;
    case Op::OverlapFB: ns = step == 0 ? (a.stage() == 3 ? 207 : 216) : a.stage() == 3 ? pair3[k] : pair1[k]; break;
    default: return 30;  // RECV waits
  }
  return step == 0 ? 10 * ns : ns;
}

RunRecord dualpipe_record() {
  auto record = record_for(lower(generate_schedule("dualpipe", {2, 4, 2})));
  for (int k = 0; k < 4; ++k)
    record.steps.push_back(lay_out(record.schedule, [k](const Action& a) { return dualpipe_ns(k, a); }, {0, 0}));
  return record;
}

TEST(Calibration, DualPipePairsAndOverlapSlowdown) {
  auto record = dualpipe_record();
  // The layout the comment above assumes.
  std::vector<std::string> pairs;
  for (auto& program : record.schedule.programs)
    for (auto& a : program)
      if (a.op == Op::OverlapFB) pairs.push_back(to_string(a));
  ASSERT_EQ(pairs, (std::vector<std::string>{"(3F3;0B0)OVERLAP_F_B", "(1F1;2B2)OVERLAP_F_B"}));

  auto c = calibrate(record);
  EXPECT_EQ(c.steps_used, 3);
  ASSERT_EQ(c.stages.size(), 4u);
  EXPECT_EQ(c.stages[0].F_ns, 100);
  EXPECT_EQ(c.stages[0].I_ns, 60);
  EXPECT_EQ(c.stages[0].W_ns, 40);
  EXPECT_EQ(c.stages[0].B_ns, std::nullopt);
  EXPECT_EQ(c.stages[0].FB_ns, std::nullopt);
  EXPECT_EQ(c.stages[1].F_ns, 120);
  EXPECT_EQ(c.stages[1].B_ns, 240);
  EXPECT_EQ(c.stages[1].I_ns, std::nullopt);
  EXPECT_EQ(c.stages[1].FB_ns, 216);
  EXPECT_EQ(c.stages[2].F_ns, 110);
  EXPECT_EQ(c.stages[2].I_ns, 70);
  EXPECT_EQ(c.stages[2].W_ns, 50);
  EXPECT_EQ(c.stages[2].FB_ns, std::nullopt);
  EXPECT_EQ(c.stages[3].F_ns, 130);
  EXPECT_EQ(c.stages[3].B_ns, 260);
  EXPECT_EQ(c.stages[3].FB_ns, 207);
  EXPECT_DOUBLE_EQ(c.overlap_slowdown, 0.9);

  // Simulated back, each compute action takes its calibrated time: a pair of partners (the two stages on
  // a rank) its FB; stage 1's fused B 240 (split 120 + 120 where needed), stage 0's and 2's I/W as measured.
  auto t = simulate(c.schedule, calibrated_costs(c, 2));
  auto expected = [](const Action& a) -> std::int64_t {
    if (a.op == Op::OverlapFB) return a.stage() == 3 ? 207 : 216;
    return dualpipe_ns(1, a);
  };
  int compute = 0;
  for (auto& s : t.spans)
    if (s.stream == Stream::Compute && s.action.is_compute()) {
      ++compute;
      EXPECT_EQ(s.end_ns - s.start_ns, expected(s.action)) << to_string(s.action);
    }
  EXPECT_EQ(compute, 16);  // 8 compute actions per rank
}

TEST(Calibration, JsonRoundTrip) {
  for (auto& record : {one_f_one_b_record(3), dualpipe_record()}) {
    auto c = calibrate(record);
    auto back = parse_calibration(to_json(c).dump(), "cal.json");
    expect_same_calibration(back, c);
    // And once more: the text is stable.
    EXPECT_EQ(to_json(back).dump(), to_json(c).dump());
  }
}

TEST(RunRecord, JsonRoundTrip) {
  for (auto& record : {one_f_one_b_record(3), dualpipe_record()}) {
    auto text = to_json_text(record);
    auto back = parse_run_record(text, "run.json");
    expect_same_schedule(back.schedule, record.schedule);
    EXPECT_EQ(back.source, "measured");
    EXPECT_EQ(back.workload, record.workload);
    EXPECT_EQ(back.links.p2p_latency_ns, 15000.0);
    EXPECT_EQ(back.links.p2p_bandwidth_GBps, 25.0);
    EXPECT_EQ(back.links.activation_bytes, 4 << 20);
    EXPECT_EQ(back.links.all_to_all_GBps, 0.0);
    ASSERT_EQ(back.steps.size(), record.steps.size());
    for (std::size_t k = 0; k < back.steps.size(); ++k) {
      ASSERT_EQ(back.steps[k].size(), record.steps[k].size());
      for (std::size_t i = 0; i < back.steps[k].size(); ++i) {
        auto& a = back.steps[k][i];
        auto& b = record.steps[k][i];
        EXPECT_EQ(a.rank, b.rank);
        EXPECT_EQ(a.stream, b.stream);
        EXPECT_EQ(a.action, b.action) << to_string(a.action) << " vs " << to_string(b.action);
        EXPECT_EQ(a.start_ns, b.start_ns);
        EXPECT_EQ(a.end_ns, b.end_ns);
        EXPECT_EQ(a.bytes, b.bytes);
        EXPECT_EQ(a.peer, b.peer);
        EXPECT_EQ(a.flow, b.flow);
      }
    }
    EXPECT_EQ(to_json_text(back), text);
    // Calibrating the parsed record gives what the original gives, through the calibration file too.
    auto c = calibrate(back);
    expect_same_calibration(c, calibrate(record));
    expect_same_calibration(parse_calibration(to_json(c).dump(), "cal.json"), calibrate(record));
  }
}

// ZB-H1 exported to CSV and imported back ("csv", routes inferred from the programs), lowered, run for two
// steps: step 0 warm-up at 3x, step 1 at stage 0 F 1000, I 1100, W 600; stage 1 F 1300, I 1200, W 700.
TEST(Calibration, CsvRunSimulatesBack) {
  auto imported = from_csv(to_csv(generate_schedule("zb-h1", {2, 4, 2})));
  validate(imported);
  auto record = record_for(lower(imported));
  ASSERT_EQ(record.schedule.name, "csv");
  auto ns = [](const Action& a) -> std::int64_t {
    if (!a.is_compute()) return 0;
    bool s0 = a.stage() == 0;
    switch (a.op) {
      case Op::F: return s0 ? 1000 : 1300;
      case Op::I: return s0 ? 1100 : 1200;
      default: return s0 ? 600 : 700;  // W: ZB-H1 runs no fused B
    }
  };
  record.steps.push_back(lay_out(record.schedule, [&](const Action& a) { return 3 * ns(a); }, {0, 0}));
  record.steps.push_back(lay_out(record.schedule, ns, {0, 0}));

  auto parsed = parse_run_record(to_json_text(record), "run.json");
  auto c = parse_calibration(to_json(calibrate(parsed)).dump(), "cal.json");
  EXPECT_EQ(c.schedule.name, "csv");
  expect_same_schedule(c.schedule, record.schedule);
  EXPECT_EQ(c.steps_used, 1);
  EXPECT_EQ(c.stages[0].F_ns, 1000);
  EXPECT_EQ(c.stages[0].I_ns, 1100);
  EXPECT_EQ(c.stages[0].W_ns, 600);
  EXPECT_EQ(c.stages[1].F_ns, 1300);
  EXPECT_EQ(c.stages[1].I_ns, 1200);
  EXPECT_EQ(c.stages[1].W_ns, 700);
  EXPECT_EQ(c.stages[0].B_ns, std::nullopt);

  // The header alone is enough to simulate: every compute span takes its calibrated median.
  auto t = simulate(c.schedule, calibrated_costs(c, c.schedule.ranks));
  expect_same_schedule(*t.schedule, record.schedule);
  int compute = 0;
  for (auto& s : t.spans)
    if (s.stream == Stream::Compute && s.action.is_compute()) {
      ++compute;
      EXPECT_EQ(s.end_ns - s.start_ns, ns(s.action)) << to_string(s.action);
    }
  EXPECT_EQ(compute, 24);  // F, I, W for 4 micro-batches on 2 stages
}

// 1F1B on 2 ranks, 2 micro-batches; compute spans only, rank 0 from 0 and rank 1 laid out to end at the
// step's makespan. Compute order: rank 0 0F0 0F1 0B0 0B1, rank 1 1F0 1B0 1F1 1B1.
// Measured, steps 1..3: 0F0 100, 0F1 110, 0B0 200, 0B1 200 (rank 0 busy 610, ends at 610);
//   1F0 50, 1B0 200, 1F1 100, 1B1 280 / 320 / 300 (rank 1 busy 630 / 670 / 650), ending at
//   1000 / 1200 / 1100: starts 370 / 530 / 450. Step 0 (warm-up): every duration x10 from 0.
// Predicted, one step: F 100, B 200 everywhere; rank 0 from 0 (busy 600), rank 1 from 610 to 1210.
TEST(Compare, MakespanBubblesAndDeviations) {
  auto schedule = lower(generate_schedule("1f1b", {2, 2, 2}));
  std::vector<std::vector<std::string>> order;
  for (auto& program : schedule.programs) {
    order.emplace_back();
    for (auto& a : program)
      if (a.is_compute()) order.back().push_back(to_string(a));
  }
  ASSERT_EQ(order, (std::vector<std::vector<std::string>>{{"0F0", "0F1", "0B0", "0B1"}, {"1F0", "1B0", "1F1", "1B1"}}));

  auto measured_ns = [](int step, const Action& a) -> std::int64_t {
    std::int64_t ns = 0;
    auto name = to_string(a);
    if (name == "0F1") ns = 110;
    else if (name == "1F0") ns = 50;
    else if (name == "1B1") ns = step == 1 ? 280 : step == 2 ? 320 : 300;
    else ns = a.op == Op::F ? 100 : 200;
    return step == 0 ? 10 * ns : ns;
  };
  auto measured = record_for(schedule);
  const std::int64_t rank1_start[] = {0, 370, 530, 450};
  for (int k = 0; k < 4; ++k)
    measured.steps.push_back(lay_out(schedule, [&, k](const Action& a) { return measured_ns(k, a); },
                                     {0, rank1_start[k]}, false));
  auto predicted = record_for(schedule);
  predicted.source = "predicted";
  predicted.steps.push_back(lay_out(schedule, [](const Action& a) -> std::int64_t { return a.op == Op::F ? 100 : 200; },
                                    {0, 610}, false));

  auto out = compare(measured, predicted);
  // Steps 1..3 end at 1000, 1200, 1100: the median step is step 3, 1100. The warm-up (6500) is left out.
  EXPECT_EQ(out.measured_makespan_ns, 1100.0);
  EXPECT_EQ(out.predicted_makespan_ns, 1210.0);
  // (1210 - 1100) / 1100 = 110 / 1100 = 0.1.
  EXPECT_DOUBLE_EQ(out.makespan_error, 0.1);
  // Bubbles = 1 - busy / makespan of the typical step (step 3) and of the prediction:
  //   rank 0: 1 - 610/1100 = 490/1100 measured, 1 - 600/1210 = 610/1210 predicted, busy ratio 610/600
  //   rank 1: 1 - 650/1100 = 450/1100 measured, 610/1210 predicted, busy ratio 650/600
  ASSERT_EQ(out.ranks.size(), 2u);
  EXPECT_EQ(out.ranks[0].rank, 0);
  EXPECT_DOUBLE_EQ(out.ranks[0].bubble_measured, 490.0 / 1100.0);
  EXPECT_DOUBLE_EQ(out.ranks[0].bubble_predicted, 610.0 / 1210.0);
  EXPECT_DOUBLE_EQ(out.ranks[0].busy_ratio, 610.0 / 600.0);
  EXPECT_EQ(out.ranks[1].rank, 1);
  EXPECT_DOUBLE_EQ(out.ranks[1].bubble_measured, 450.0 / 1100.0);
  EXPECT_DOUBLE_EQ(out.ranks[1].bubble_predicted, 610.0 / 1210.0);
  EXPECT_DOUBLE_EQ(out.ranks[1].busy_ratio, 650.0 / 600.0);
  // Deviations: median measured over steps 1..3 against predicted. 1F0 50/100 = 0.5 (|ln| 0.69), 1B1
  // median(280, 320, 300) = 300, 300/200 = 1.5 (|ln| 0.41), 0F1 110/100 = 1.1 (|ln| 0.10), the other five 1.
  // (With the warm-up, 1B1's four values [280, 300, 320, 3000] would give 320.)
  ASSERT_EQ(out.deviations.size(), 8u);
  auto expect_deviation = [&](std::size_t i, const char* action, int rank, double m, double p) {
    auto& d = out.deviations[i];
    EXPECT_EQ(d.action, action) << i;
    EXPECT_EQ(d.rank, rank) << i;
    EXPECT_EQ(d.measured_ns, m) << i;
    EXPECT_EQ(d.predicted_ns, p) << i;
    EXPECT_DOUBLE_EQ(d.ratio, m / p) << i;
  };
  expect_deviation(0, "1F0", 1, 50, 100);
  expect_deviation(1, "1B1", 1, 300, 200);
  expect_deviation(2, "0F1", 0, 110, 100);
  for (std::size_t i = 3; i < out.deviations.size(); ++i) EXPECT_EQ(out.deviations[i].ratio, 1.0) << out.deviations[i].action;
}

TEST(Compare, RefusesRunsOfDifferentShape) {
  auto measured = one_f_one_b_record(3);  // 4 micro-batches
  auto predicted = record_for(lower(generate_schedule("1f1b", {2, 2, 2})));
  predicted.steps.push_back({});
  expect_error([&] { compare(measured, predicted); }, {"compare", "differ in shape", "micro-batches 4 vs 2"});
}

TEST(RunRecord, MalformedInputNamesFileAndPath) {
  auto text = to_json_text(one_f_one_b_record(2));
  // Cut off half way: the parser says where it came from.
  expect_error([&] { parse_run_record(text.substr(0, text.size() / 2), "run.json"); }, {"run.json", "not valid JSON"});
  // A span that ends before it starts: the 4th span of the first step.
  auto bad = one_f_one_b_record(2);
  bad.steps[0][3].end_ns = bad.steps[0][3].start_ns - 1;
  expect_error([&] { parse_run_record(to_json_text(bad), "run.json"); }, {"run.json: steps[0][3]", "ends before it starts"});
  // A span on a rank the schedule does not have.
  auto stray = one_f_one_b_record(2);
  stray.steps[1][0].rank = 2;
  expect_error([&] { parse_run_record(to_json_text(stray), "run.json"); }, {"run.json: steps[1][0][0]", "rank 2 is not in 0..1"});
}

// GPU kernel lanes (measured on the CUDA device) travel with the run: one list per step, names with quotes
// and angle brackets intact; a kernel on a rank the schedule lacks, or with a count of steps that differs,
// is refused by path.
TEST(RunRecord, KernelLanesRoundTripAndAreChecked) {
  auto record = one_f_one_b_record(2);
  record.kernels = {{{0, 7, "void gemm<128, \"x\">(float const*)", 100, 250, 0, 3, {OpKind::Gemm, 'I', 2.5e9, 0, 512}},
                     {1, 13, "memcpy DtoD", 300, 310, 4096, -1, {}}},
                    {{0, kHostStream, "rmsnorm_forward", 5, 9, 0, 0, {OpKind::Memory, 'F', 0, 1.5e6, 0}}}};
  auto text = to_json_text(record);
  auto back = parse_run_record(text, "run.json");
  ASSERT_EQ(back.kernels.size(), 2u);
  ASSERT_EQ(back.kernels[0].size(), 2u);
  EXPECT_EQ(back.kernels[0][0].name, "void gemm<128, \"x\">(float const*)");
  EXPECT_EQ(back.kernels[0][1].stream, 13u);
  EXPECT_EQ(back.kernels[0][1].bytes, 4096);
  EXPECT_EQ(back.kernels[1][0].end_ns, 9);
  // The operator's work travels with each kernel it launched; an untagged kernel stays untagged.
  EXPECT_EQ(back.kernels[0][0].op, 3);
  EXPECT_EQ(back.kernels[0][0].work.kind, OpKind::Gemm);
  EXPECT_EQ(back.kernels[0][0].work.pass, 'I');
  EXPECT_EQ(back.kernels[0][0].work.flops, 2.5e9);
  EXPECT_EQ(back.kernels[0][0].work.min_dim, 512);
  EXPECT_EQ(back.kernels[0][1].op, -1);
  EXPECT_EQ(back.kernels[1][0].stream, kHostStream);
  EXPECT_EQ(back.kernels[1][0].work.bytes, 1.5e6);
  EXPECT_EQ(to_json_text(back), text);
  auto bad_pass = text, bad_kind = text, negative = text;
  bad_pass.replace(bad_pass.find(R"("I")"), 3, R"("B")");
  expect_error([&] { parse_run_record(bad_pass, "run.json"); }, {"run.json: kernels[0][0][8]", "pass 'B' is not F, I or W"});
  bad_kind.replace(bad_kind.find(R"("gemm")"), 6, R"("fft")");
  expect_error([&] { parse_run_record(bad_kind, "run.json"); }, {"run.json: kernels[0][0][7]", "unknown operator kind 'fft'"});
  auto no_dim = text;
  no_dim.replace(no_dim.find("2500000000.0,0.0,512.0"), 22, "2500000000.0,0.0,0.0");
  expect_error([&] { parse_run_record(no_dim, "run.json"); }, {"run.json: kernels[0][0][11]", "smallest dimension of at least 1"});
  negative.replace(negative.find("1500000"), 7, "-15000");
  expect_error([&] { parse_run_record(negative, "run.json"); }, {"run.json: kernels[1][0][10]", "not a finite count"});
  EXPECT_EQ(parse_run_record(to_json_text(one_f_one_b_record(2)), "run.json").kernels.size(), 0u);  // none recorded
  auto stray = record;
  stray.kernels[1][0].rank = 5;
  expect_error([&] { parse_run_record(to_json_text(stray), "run.json"); }, {"run.json: kernels[1][0][0]", "rank 5"});
  auto short_list = record;
  short_list.kernels.pop_back();
  expect_error([&] { parse_run_record(to_json_text(short_list), "run.json"); }, {"run.json: kernels", "1 steps of kernels for 2"});
  auto backwards = record;
  backwards.kernels[0][0].end_ns = 50;
  expect_error([&] { parse_run_record(to_json_text(backwards), "run.json"); }, {"run.json: kernels[0][0]", "ends before it starts"});
}

TEST(Calibration, MalformedInputNamesFileAndPath) {
  auto json = to_json(calibrate(one_f_one_b_record(3)));
  auto text = json.dump();
  expect_error([&] { parse_calibration(text.substr(0, text.size() - 5), "cal.json"); }, {"cal.json", "not valid JSON"});
  auto negative = json;
  negative["durations"][1]["F_ns"] = -5;
  expect_error([&] { parse_calibration(negative.dump(), "cal.json"); },
               {"cal.json: durations[1].F_ns", "-5 ns", "must be positive"});
  auto short_list = json;
  short_list["durations"].erase(1);
  expect_error([&] { parse_calibration(short_list.dump(), "cal.json"); }, {"cal.json: durations", "1 entries for the 2 stages"});
}

}  // namespace
}  // namespace pipesim
