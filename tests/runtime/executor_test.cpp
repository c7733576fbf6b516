// The executor in-process, without mpirun: every schedule in the registry runs on 2 and 4 threaded ranks
// (runtime/comm_threads.hpp) with the tiny transformer, dense and MoE over 2 expert-parallel replicas, and
// its step is checked against the single-process reference step: losses bit for bit, gradients to 1e-12
// (fp64). Also: the measured spans honour the schedule's data dependencies (the PassIndex the validator and
// the engine use), each stage gets the one layer-split policy's layers, and timelines gather on rank 0.
#include "runtime/run.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "runtime/comm_threads.hpp"
#include "runtime/executor.hpp"
#include "schedules/dependencies.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

// The sizes of tests/runtime/run_check.sh: 8 layers, so 4 ranks of a V schedule (8 stages) get one each.
WorkloadSpec dense_spec() {
  return {.layers = 8, .hidden = 16, .heads = 2, .ffn = 32, .seq = 8};
}
WorkloadSpec moe_spec() {
  auto spec = dense_spec();
  spec.experts = 4;
  spec.experts_per_token = 2;
  spec.expert_ffn = 16;
  spec.ep = 2;
  return spec;
}

// The schedule lowered at `ranks` with the fewest micro-batches it supports among 2·ranks and 4·ranks
// (DualPipe and DualPipeV need m ≥ 2p, interleaved 1F1B a multiple of p); none when it supports neither.
// A supported size that fails to validate or lower fails the test.
std::optional<Schedule> lowered_schedule(const ScheduleInfo& info, int ranks) {
  for (int m : {2 * ranks, 4 * ranks}) {
    if (info.supports({ranks, m, 2})) continue;
    auto schedule = info.generate({ranks, m, 2});
    validate(schedule);
    return lower(schedule);
  }
  return std::nullopt;
}

template <class T>
CheckResult check_in_process(const Schedule& lowered, const WorkloadSpec& spec) {
  std::optional<CheckResult> check;
  run_on_threads(lowered.ranks * spec.ep, [&](Comm& comm) {
    auto device = make_cpu_device<T>();
    auto result = run_pipeline<T>(lowered, spec, comm, *device, {.steps = 1, .check = true});
    if (comm.rank() == 0) check = result.check;
  });
  if (!check) throw Error("rank 0 returned no check", Error::Kind::Internal);
  return *check;
}

// Every registry schedule at 2 and 4 ranks; each must run at one size at least.
void check_every_schedule(const WorkloadSpec& spec) {
  for (auto& info : schedule_registry()) {
    int sizes = 0;
    for (int ranks : {2, 4}) {
      auto lowered = lowered_schedule(info, ranks);
      if (!lowered) continue;
      ++sizes;
      SCOPED_TRACE(fmt::format("{} on {} ranks, {} micro-batches, ep {}", info.name, ranks, lowered->microbatches,
                               spec.ep));
      auto c = check_in_process<double>(*lowered, spec);
      EXPECT_EQ(c.losses, lowered->microbatches * spec.ep);
      EXPECT_EQ(c.exact_losses, c.losses) << "losses not bit-identical";
      EXPECT_EQ(c.compared_gradients, c.gradients);
      EXPECT_LE(c.worst_relative_error, 1e-12);
      EXPECT_TRUE(c.ok);
    }
    EXPECT_GT(sizes, 0) << info.name << " refused 2 and 4 ranks";
  }
}

TEST(Executor, EveryScheduleMatchesTheReferenceStepDense) { check_every_schedule(dense_spec()); }

TEST(Executor, EveryScheduleMatchesTheReferenceStepMoe) { check_every_schedule(moe_spec()); }

TEST(Executor, Fp32KeepsTheLossBits) {
  auto lowered = lowered_schedule(find_schedule("dualpipe"), 2);
  ASSERT_TRUE(lowered);
  auto c = check_in_process<float>(*lowered, dense_spec());
  EXPECT_TRUE(c.ok) << c.exact_losses << " of " << c.losses << ", error " << c.worst_relative_error;
  EXPECT_EQ(c.tolerance, 1e-5);
}

// One step's raw spans on every rank, all on one clock (the threads share it).
std::vector<Span> one_step(const Schedule& lowered, const WorkloadSpec& spec) {
  std::vector<std::vector<Span>> spans(static_cast<std::size_t>(lowered.ranks * spec.ep));
  auto origin = std::chrono::steady_clock::now();
  run_on_threads(lowered.ranks * spec.ep, [&](Comm& comm) {
    auto device = make_cpu_device<double>();
    Executor<double> executor(lowered, spec, comm, *device);
    spans[static_cast<std::size_t>(comm.rank())] = executor.run_step(origin);
  });
  std::vector<Span> all;
  for (int r = 0; r < lowered.ranks; ++r) all.insert(all.end(), spans[std::size_t(r)].begin(), spans[std::size_t(r)].end());
  return all;
}

// A pass starts only after the passes it needs have ended, wherever they ran: the executor's transfers
// carry exactly the schedule's data flow, and a pass's span starts once its inputs are here (an overlapped
// F&B pair's once both halves' are).
TEST(Executor, SpansHonourTheDataDependencies) {
  for (auto& info : schedule_registry()) {
    auto lowered = lowered_schedule(info, 4);
    if (!lowered) continue;
    SCOPED_TRACE(std::string(info.name));
    auto spans = one_step(*lowered, dense_spec());
    auto compute = compute_only(*lowered);
    PassIndex index(compute);
    std::map<std::tuple<Op, int, int>, const Span*> span_of;
    for (auto& s : spans)
      if (s.stream == Stream::Compute)
        for (auto& p : s.action.passes()) span_of[{p.op, p.stage, p.microbatch}] = &s;
    std::size_t checked = 0;
    for (auto& [key, span] : span_of) {
      auto [op, stage, mb] = key;
      if (op != Op::F && op != Op::I && op != Op::W && op != Op::B) continue;
      Pass needs[2];
      int n = producers(compute, index, Pass{op, stage, mb}, needs);
      for (int i = 0; i < n; ++i) {
        auto it = span_of.find({Op{needs[i].op}, int{needs[i].stage}, needs[i].microbatch});
        ASSERT_NE(it, span_of.end()) << to_string(needs[i]) << " never ran";
        EXPECT_LE(it->second->end_ns, span->start_ns) << to_string(Pass{op, stage, mb}) << " began before " << to_string(needs[i])
                                            << " ended";
        ++checked;
      }
    }
    EXPECT_GT(checked, 0u);
  }
}

// The one layer-split policy (models/layer_split.hpp): even, the remainder on the middle stages of a route.
TEST(Executor, StageLayersFollowTheEvenSplit) {
  auto s = lower(generate_schedule("1f1b", {4, 4, 2}));
  std::vector<std::pair<int, int>> got;
  for (int stage = 0; stage < 4; ++stage) got.push_back(stage_layers(s, stage, 10));
  EXPECT_EQ(got, (std::vector<std::pair<int, int>>{{0, 2}, {2, 3}, {5, 3}, {8, 2}}));
  auto v = generate_schedule("zb-v", {2, 4, 2});  // 4 stages on one route: 0 1 | 2 3 folded over 2 ranks
  EXPECT_EQ(stage_layers(v, 3, 4), (std::pair<int, int>{3, 1}));
  try {
    stage_layers(s, 0, 3);
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::Input);
    EXPECT_NE(std::string(e.what()).find("the model's 3 layers do not split over 4 pipeline stages"), std::string::npos)
        << e.what();
  }
}

// run_pipeline's timelines: one per step on rank 0 only, each starting at 0, with every compute action of
// the pipeline's ranks; link figures on every rank.
TEST(Executor, RunGathersEachStepOnRankZero) {
  auto lowered = lower(generate_schedule("zb-h1", {2, 4, 2}));
  std::vector<RunResult> results(2);
  run_on_threads(2, [&](Comm& comm) {
    auto device = make_cpu_device<double>();
    results[std::size_t(comm.rank())] = run_pipeline<double>(lowered, dense_spec(), comm, *device, {.steps = 2});
  });
  ASSERT_EQ(results[0].steps.size(), 2u);
  EXPECT_TRUE(results[1].steps.empty());
  EXPECT_FALSE(results[0].check);
  std::size_t compute_actions = 0;
  for (auto& program : lowered.programs)
    for (auto& a : program) compute_actions += a.op != Op::SendF && a.op != Op::SendB;  // RECVs are compute spans
  for (auto& step : results[0].steps) {
    std::int64_t first = INT64_MAX;
    std::size_t compute = 0;
    std::set<int> ranks;
    for (auto& s : step) {
      first = std::min(first, s.start_ns);
      compute += s.stream == Stream::Compute;
      ranks.insert(s.rank);
    }
    EXPECT_EQ(first, 0);
    EXPECT_EQ(compute, compute_actions);
    EXPECT_EQ(ranks, (std::set<int>{0, 1}));
  }
  for (auto& r : results) {
    EXPECT_GT(r.links.p2p_latency_ns, 0);
    EXPECT_EQ(r.links.activation_bytes, 8 * 16 * 8);
  }
  EXPECT_EQ(results[0].links.p2p_latency_ns, results[1].links.p2p_latency_ns);
}

// A failure on one rank (here: more ranks than the schedule and --ep need) surfaces as an Error, not a hang.
TEST(Executor, RefusesTheWrongNumberOfRanks) {
  auto lowered = lower(generate_schedule("1f1b", {2, 4, 2}));
  try {
    run_on_threads(3, [&](Comm& comm) {
      auto device = make_cpu_device<double>();
      run_pipeline<double>(lowered, dense_spec(), comm, *device, {});
    });
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 were started"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pipesim
