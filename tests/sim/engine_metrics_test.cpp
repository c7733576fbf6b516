// The metrics-only path of the engine (simulate_metrics) against compute_metrics() of the stored timeline
// (simulate), field by field and exactly, on every registry schedule at many sizes and on random valid
// schedules, with random stage costs, uneven stages, F&B pair costs, memory, stragglers, per-pair links and
// slow shared links (transfers queued FIFO): thousands of cases. simulate_metrics() takes the one-pass
// path (sim/metrics_pass.hpp) and simulate() the event engine, so this is their differential test.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "common/error.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"
#include "sim/engine.hpp"
#include "sim/metrics_pass.hpp"
#include "traces/metrics.hpp"
#include "tests/sim/expect_same_metrics.hpp"

namespace pipesim {
namespace {

// The one-pass path must finish on its own (not by falling back to the engine) and agree with the engine.
void expect_pass_equals_engine(const Schedule& schedule, const CostSpec& costs, const std::string& what) {
  auto engine = compute_metrics(simulate(schedule, costs));
  auto pass = metrics_pass(schedule, resolve_costs(costs, schedule));
  ASSERT_TRUE(pass.has_value()) << what << ": the metrics pass stopped short";
  expect_same(*pass, engine, what);
  expect_same(simulate_metrics(schedule, costs), engine, what);
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
  for (auto& st : spec.stages) {
    if (unit(rng) < 0.2) st.FB_ns = ns(rng);
    if (unit(rng) < 0.2) st.activation_memory_w = bytes(rng);
  }
  if (unit(rng) < 0.3) {  // a topology: every rank pair its own link
    spec.rank_links.resize(static_cast<std::size_t>(s.ranks) * static_cast<std::size_t>(s.ranks));
    for (auto& link : spec.rank_links) link = {ns(rng) / 10, unit(rng) < 0.2 ? 0 : 1 + 100 * unit(rng)};
  }
  return spec;
}

// A random valid schedule: a random topological order of the passes (each F after the stage before it, each
// backward after the stage after it and its own F, W after I), each pass appended to its rank's program
// when it is picked; some backwards split into I and W, some F and backward of one rank fused into an
// overlapped pair. Any such order runs without deadlock.
Schedule random_schedule(std::mt19937_64& rng, int ranks, int microbatches, bool v_shape) {
  Schedule s;
  s.name = "random";
  s.ranks = ranks;
  s.stages = v_shape ? 2 * ranks : ranks * static_cast<int>(1 + rng() % 2);
  s.microbatches = microbatches;
  s.stage_to_rank = v_shape ? v_placement(ranks) : loop_placement(ranks, s.stages);
  set_single_route(s);
  s.programs.resize(static_cast<std::size_t>(ranks));
  std::uniform_real_distribution<double> unit(0, 1);
  struct Ready {
    Pass pass;
    bool split;  // a backward as I (then W), not B
  };
  std::vector<Ready> ready;
  std::vector<bool> split(static_cast<std::size_t>(s.stages * microbatches));
  for (auto&& b : split) b = unit(rng) < 0.5;
  auto backward = [&](int stage, int mb) {
    bool i = split[static_cast<std::size_t>(stage * microbatches + mb)];
    return Ready{{i ? Op::I : Op::B, stage, mb}, i};
  };
  for (int mb = 0; mb < microbatches; ++mb) ready.push_back({{Op::F, 0, mb}, false});
  auto done = [&](const Ready& r) {  // what picking r makes ready
    auto [op, stage, mb] = r.pass;
    if (op == Op::F) ready.push_back(stage + 1 < s.stages ? Ready{{Op::F, stage + 1, mb}, false} : backward(stage, mb));
    if ((op == Op::I || op == Op::B) && stage > 0) ready.push_back(backward(stage - 1, mb));
    if (op == Op::I) ready.push_back({{Op::W, stage, mb}, false});
  };
  while (!ready.empty()) {
    auto k = static_cast<std::size_t>(rng() % ready.size());
    auto pick = ready[k];
    ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(k));
    int rank = s.stage_to_rank[static_cast<std::size_t>(pick.pass.stage)];
    // Fuse an F with a backward ready on the same rank, sometimes.
    auto partner = std::find_if(ready.begin(), ready.end(), [&](const Ready& o) {
      return s.stage_to_rank[static_cast<std::size_t>(o.pass.stage)] == rank &&
             (pick.pass.op == Op::F ? o.pass.op == Op::B || o.pass.op == Op::I : o.pass.op == Op::F && pick.pass.op != Op::W);
    });
    if (partner != ready.end() && unit(rng) < 0.3) {
      auto other = *partner;
      ready.erase(partner);
      auto& f = pick.pass.op == Op::F ? pick : other;
      auto& b = pick.pass.op == Op::F ? other : pick;
      s.programs[static_cast<std::size_t>(rank)].push_back(Action::overlap(f.pass, b.pass));
      done(f);
      done(b);
      continue;
    }
    s.programs[static_cast<std::size_t>(rank)].push_back(Action::single(pick.pass.op, pick.pass.stage, pick.pass.microbatch));
    done(pick);
  }
  return s;
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
          expect_pass_equals_engine(schedule, costs, what);
          ++cases;
        }
      }
  EXPECT_GT(cases, 2000);
}

// The same on random valid schedules (random orders, split backwards, overlapped pairs), loop and V placements.
TEST(EngineMetrics, TheMetricsOnlyPathEqualsTheTimelinesMetricsOnRandomSchedules) {
  std::mt19937_64 rng(4122026);
  for (int trial = 0; trial < 1500; ++trial) {
    int ranks = 1 + static_cast<int>(rng() % 6), microbatches = 1 + static_cast<int>(rng() % 10);
    auto schedule = random_schedule(rng, ranks, microbatches, rng() % 2 == 0);
    auto what = "random " + std::to_string(ranks) + "x" + std::to_string(microbatches) + " trial " + std::to_string(trial);
    ASSERT_NO_THROW(validate(schedule)) << what << "\n" << to_text(schedule);
    auto costs = random_costs(schedule, rng);
    expect_pass_equals_engine(schedule, costs, what);
  }
}

// A lowered schedule (SEND/RECV placed, as a CSV import may hold them) is the engine's to play: the pass
// declines it and simulate_metrics() still gives the timeline's numbers.
TEST(EngineMetrics, ALoweredScheduleGoesToTheEngine) {
  std::mt19937_64 rng(7);
  for (auto name : {"1f1b", "zb-v", "dualpipe"}) {
    auto lowered = lower(find_schedule(name).generate({4, 8, 2}));
    auto costs = random_costs(lowered, rng);
    EXPECT_FALSE(metrics_pass(lowered, resolve_costs(costs, lowered)).has_value()) << name;
    expect_same(simulate_metrics(lowered, costs), compute_metrics(simulate(lowered, costs)), name);
  }
}

// A schedule that cannot finish (here rank 0 waits for a gradient before sending the activation it comes
// from), passed off as validated: the pass stops short and the engine names the deadlock.
TEST(EngineMetrics, ADeadlockFallsBackToTheEnginesMessage) {
  Schedule s;
  s.name = "stuck";
  s.ranks = 2;
  s.stages = 2;
  s.microbatches = 1;
  s.stage_to_rank = {0, 1};
  set_single_route(s);
  s.programs = {{Action::single(Op::B, 0, 0), Action::single(Op::F, 0, 0)},
                {Action::single(Op::F, 1, 0), Action::single(Op::B, 1, 0)}};
  auto costs = uniform_costs("F=1ms,I=1ms,W=1ms", 2, 2);
  EXPECT_FALSE(metrics_pass(s, resolve_costs(costs, s)).has_value());
  try {
    simulate_metrics(s, costs, Validation::AlreadyDone);
    FAIL() << "no deadlock reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("simulation deadlock: rank 0"), std::string::npos) << e.what();
  }
}

// With only the shape validated (ShapeDone, simulate's metrics path), the pass checks the rest as it plays:
// a schedule with a pass out of range or out of place, twice or missing, or out of order, gets validate()'s
// own message.
TEST(EngineMetrics, WhatValidateChecksIsCheckedAsThePassPlays) {
  auto message = [](const Schedule& s) {
    try {
      validate(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("valid");
  };
  auto costs = [](const Schedule& s) { return uniform_costs("F=1ms,I=1ms,W=1ms", s.stages, s.ranks); };
  auto base = find_schedule("zb-h1").generate({4, 8, 2});
  std::vector<Schedule> broken;
  {
    auto s = base;  // a W before its I
    auto& p = s.programs[2];
    auto w = std::find_if(p.begin(), p.end(), [](const Action& a) { return a.op == Op::W; });
    auto i = std::find_if(p.begin(), p.end(), [&](const Action& a) { return a.op == Op::I && a.microbatch() == w->microbatch(); });
    std::iter_swap(w, i);
    broken.push_back(s);
  }
  {
    auto s = base;  // a B before its F on the last stage (same rank)
    auto& p = s.programs[3];
    std::iter_swap(p.begin(), p.begin() + 1);
    broken.push_back(s);
  }
  {
    auto s = base;  // rank 1 waits for a gradient before sending the activation it comes from
    auto& p = s.programs[1];
    auto i = std::find_if(p.begin(), p.end(), [](const Action& a) { return a.op == Op::I; });
    std::rotate(p.begin(), i, i + 1);
    broken.push_back(s);
  }
  // ZB-V at 4 ranks: rank 3 holds stages 3 and 4, the V's turn, so each feeds the other on the same rank.
  auto v = find_schedule("zb-v").generate({4, 8, 2});
  auto swap_first = [&](Op op, int first_stage, int then_stage) {
    auto s = v;
    auto& p = s.programs[3];
    auto is = [&](int stage) { return [=](const Action& a) { return a.op == op && a.stage() == stage && a.microbatch() == 0; }; };
    std::iter_swap(std::find_if(p.begin(), p.end(), is(first_stage)), std::find_if(p.begin(), p.end(), is(then_stage)));
    return s;
  };
  // What validate_shape() leaves to the pass besides the order: each pass once, every pass present.
  {
    auto s = base;  // a pass twice
    s.programs[1].push_back(s.programs[1].front());
    broken.push_back(s);
  }
  {
    auto s = base;  // a W missing
    auto& p = s.programs[0];
    p.erase(std::find_if(p.begin(), p.end(), [](const Action& a) { return a.op == Op::W; }));
    broken.push_back(s);
  }
  {
    auto s = base;  // a B beside the I and W of the same stage and micro-batch
    auto& p = s.programs[2];
    auto w = std::find_if(p.begin(), p.end(), [](const Action& a) { return a.op == Op::W; });
    p.push_back(Action::single(Op::B, w->stage(), w->microbatch()));
    broken.push_back(s);
  }
  {
    // On the last stage (no gradient to receive), a B right after the I of the same micro-batch: both would
    // send the gradient, the second before the first is received (a key must not be posted twice).
    auto s = base;
    auto& p = s.programs[3];
    auto i = std::find_if(p.begin(), p.end(), [](const Action& a) { return a.op == Op::I; });
    p.insert(i + 1, Action::single(Op::B, i->stage(), i->microbatch()));
    broken.push_back(s);
  }
  // What validate_shape() leaves to the pass: each pass in range, on its stage's rank and route.
  {
    auto s = base;  // a stage that does not exist
    s.programs[0].front().pass[0].stage = 4;
    broken.push_back(s);
  }
  {
    auto s = base;  // a micro-batch that does not exist
    s.programs[1].back().pass[0].microbatch = -1;
    broken.push_back(s);
  }
  {
    auto s = base;  // 3F0 moved from rank 3 to rank 2, right after the 2F0 that feeds it
    auto& last = s.programs[3];
    last.erase(std::find(last.begin(), last.end(), Action::single(Op::F, 3, 0)));
    auto& p = s.programs[2];
    p.insert(std::find(p.begin(), p.end(), Action::single(Op::F, 2, 0)) + 1, Action::single(Op::F, 3, 0));
    broken.push_back(s);
  }
  {
    // DualPipe at 4 ranks: rank 0 holds stage 0 (micro-batches 0-3) and stage 7 (4-7); an extra 7F0 on
    // rank 0, a stage micro-batch 0 never visits (every pass it needs is there besides).
    auto s = find_schedule("dualpipe").generate({4, 8, 2});
    s.programs[0].push_back(Action::single(Op::F, 7, 0));
    broken.push_back(s);
  }
  broken.push_back(swap_first(Op::F, 3, 4));  // 4F0 before 3F0, which feeds it
  broken.push_back(swap_first(Op::I, 4, 3));  // 3I0 before 4I0, which it takes its gradient from
  for (auto& s : broken) {
    auto expected = message(s);
    ASSERT_NE(expected, "valid") << to_text(s);
    ASSERT_NO_THROW(validate_shape(s));
    EXPECT_FALSE(metrics_pass(s, resolve_costs(costs(s), s)).has_value()) << expected;
    for (auto how : {Validation::Check, Validation::ShapeDone}) {
      try {
        simulate_metrics(s, costs(s), how);
        ADD_FAILURE() << "accepted: " << expected;
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), expected);
      }
    }
  }
  EXPECT_TRUE(metrics_pass(base, resolve_costs(costs(base), base)).has_value());
}

}  // namespace
}  // namespace pipesim
