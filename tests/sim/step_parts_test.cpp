// The named steps of the whole-step model (sim/step.hpp) against hand arithmetic: the lowered schedule,
// the ZeRO-1 data-parallel tail and memory, the EP overlay, throughput and MFU, and a two-stage 1F1B step
// on the tiny fixtures (tests/sim/data), every expected number derived in the comments from
// docs/cost-model.md §2, §6, §8-§10. Then two regressions: microbatches derived from the global batch, and
// DualPipe's pairs on a dense model costing F + B.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "models/model.hpp"
#include "schedules/schedule.hpp"
#include "sim/step.hpp"
#include "tests/sim/expect_same_metrics.hpp"

namespace pipesim {
namespace {

std::string data(const char* file) { return std::string(PIPESIM_SIM_DATA) + "/" + file; }
ModelSpec tiny_model() { return load_model(data("tiny-gpt.json")); }
ClusterSpec tiny_cluster() { return load_cluster(data("tiny-cluster.json")); }

// Two 1F1B stages of the tiny GPT (tests/sim/model_costs_test.cpp derives their costs):
//   stage 0 (embedding + layer 1): F 11280, I 13480, W 7760 ns, 23280 parameters, 64000 activation bytes;
//   stage 1 (layer 2 + head):      F 13880, I 16580, W 9360 ns, 23320 parameters, 82000 activation bytes;
//   hand-off 4000 bytes. Cluster: 2 nodes x 2 GPUs; NVLink 4 bytes/ns + 1000 ns, IB 2 bytes/ns + 2000 ns,
//   memory-bound passes at 40 GB/s x 0.5 = 20 bytes/ns.
Plan two_stages(int dp, int microbatches = 2) {
  Plan p;
  p.schedule = "1f1b";
  p.pp = 2;
  p.dp = dp;
  p.microbatches = microbatches;
  return p;
}

TEST(StepParts, PlanScheduleIsTheLowered1F1B) {
  auto model = tiny_model();
  auto rp = resolve(two_stages(2), model, tiny_cluster());
  auto lowered = plan_schedule(rp);
  // 1F1B, p = 2, m = 2: rank 0 warms up with min(p-1-0, m) = 1 forward, rank 1 with none; sends follow the
  // pass that produces the data, receives precede the pass that needs it.
  EXPECT_EQ(to_text(lowered),
            "rank 0: 0F0 0SEND_F0 0F1 0SEND_F1 0RECV_B0 0B0 0RECV_B1 0B1\n"
            "rank 1: 1RECV_F0 1F0 1B0 1SEND_B0 1RECV_F1 1F1 1B1 1SEND_B1\n");
}

TEST(StepParts, DataParallelTailInsideOneNode) {
  // Megatron order, dp 2: pp rank 0 is GPUs {0, 1} (node 0), pp rank 1 GPUs {2, 3} (node 1). docs §8, §10:
  // reduce-scatter of S = 2·P bytes in one node, a ring of n = 2: (n-1)/n·S / nvlink + (n-1)·lat_nvl
  //   = P / 4 + 1000 ns; the all-gather the same; the optimizer reads and writes its shard P/2 at
  //   30 bytes per parameter (FP32 moments: 14 + 4·4, docs §8) over 20 bytes/ns.
  //   rank 0: P = 23280: 5820 + 1000 = 6820; optimizer 11640·30/20 = 17460.
  //   rank 1: P = 23320: 5830 + 1000 = 6830; optimizer 11660·30/20 = 17490.
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto rp = resolve(two_stages(2), model, topology.spec());
  auto work = stage_work(model, topology, rp, 0);
  for (int d = 0; d < 2; ++d) {
    auto t0 = dp_tail(topology, rp, work, 0, d);
    EXPECT_EQ(t0.reduce_scatter_ns, 6820);
    EXPECT_EQ(t0.optimizer_ns, 17460);
    EXPECT_EQ(t0.all_gather_ns, 6820);
    EXPECT_EQ(t0.total_ns(), 31100);
    auto t1 = dp_tail(topology, rp, work, 1, d);
    EXPECT_EQ(t1.reduce_scatter_ns, 6830);
    EXPECT_EQ(t1.optimizer_ns, 17490);
    EXPECT_EQ(t1.all_gather_ns, 6830);
    EXPECT_EQ(t1.total_ns(), 31150);
  }
  // dp 1: a group of one is free; the optimizer steps all of P: 23280·30/20 = 34920.
  auto single = resolve(two_stages(1), model, topology.spec());
  auto tail = dp_tail(topology, single, stage_work(model, topology, single, 0), 0, 0);
  EXPECT_EQ(tail.reduce_scatter_ns, 0);
  EXPECT_EQ(tail.optimizer_ns, 34920);
  EXPECT_EQ(tail.all_gather_ns, 0);
}

// With a measured reduce-scatter bus bandwidth the gradients' reduce-scatter takes (n-1)/n x S / busbw
// (nccl-tests' convention): dp 2, S = 2P, busbw 2 bytes/ns -> P/2; the all-gather, not measured, stays on the
// topology (6820 and 6830 above); the optimizer moves 22 bytes per shard parameter with BF16 moments.
TEST(StepParts, DataParallelTailAtTheProfilesMeasuredRates) {
  auto model = tiny_model();
  auto cluster = tiny_cluster();
  cluster.profile.comm_GBps["reduce_scatter"] = RateTable{{{1, 2}}, "test"};
  Topology topology(cluster);
  auto plan = two_stages(2);
  plan.adam_moment_bytes = 2;
  auto rp = resolve(plan, model, topology.spec());
  auto work = stage_work(model, topology, rp, 0);
  auto t0 = dp_tail(topology, rp, work, 0, 0);
  EXPECT_EQ(t0.reduce_scatter_ns, 23280 / 2);
  EXPECT_EQ(t0.all_gather_ns, 6820);
  EXPECT_EQ(t0.optimizer_ns, 11640 * 22 / 20);
  EXPECT_DOUBLE_EQ(optimizer_bytes_per_param(4), 4 + 4 + 4 + 4 + 4 + 4 + 4 + 2);  // reads g, w, m, v; writes w, m, v, bf16 w
}

TEST(StepParts, DataParallelTailAcrossNodes) {
  // Pipelines side by side (gpu = pp + 2·dp): pp rank 0's group is GPUs {0, 2}, one per node. docs §10 with
  // g = 1, N = 2: no intra-node phase; one ring over rail 0 with chunk S: (N-1)/N·S / nic_eff + (N-1)·lat_ib
  //   = (2P/2) / 2 + 2000 = P/2 + 2000. Rank 0: 11640 + 2000 = 13640; rank 1 (GPUs {1, 3}, rail 1):
  //   11660 + 2000 = 13660. The optimizer is placement-blind: 17460 and 17490.
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto plan = two_stages(2);
  plan.placement = Placement::TpPpDp;
  auto rp = resolve(plan, model, topology.spec());
  auto work = stage_work(model, topology, rp, 0);
  auto t0 = dp_tail(topology, rp, work, 0, 0);
  EXPECT_EQ(t0.reduce_scatter_ns, 13640);
  EXPECT_EQ(t0.optimizer_ns, 17460);
  EXPECT_EQ(t0.all_gather_ns, 13640);
  auto t1 = dp_tail(topology, rp, work, 1, 1);
  EXPECT_EQ(t1.reduce_scatter_ns, 13660);
  EXPECT_EQ(t1.optimizer_ns, 17490);
  EXPECT_EQ(t1.all_gather_ns, 13660);
}

// A hand-made plan: pp 1, dp 4 over the whole tiny cluster (gpu = dp), ep 2 (experts inside the dp group).
ResolvedPlan experts_plan() {
  ResolvedPlan rp;
  rp.plan.pp = 1;
  rp.plan.dp = 4;
  rp.plan.ep = 2;
  rp.gpus = 4;
  rp.stages = 1;
  rp.stage_to_rank = {0};
  rp.stage_layers = {{}};
  return rp;
}

TEST(StepParts, DataParallelTailShardsExpertsOverTheirGroup) {
  // 12000 parameters, 4000 of them routed experts: dense P = 8000 over dp {0, 1, 2, 3}, experts over the
  // GPUs of dp rank 1's expert group: dp ranks 1, 3 (d ≡ 1 mod ep) = GPUs {1, 3}.
  //   dense reduce-scatter, S = 16000, g = 2, N = 2 (docs §10):
  //     (g-1)/g·S/nvlink + (N-1)/N·(S/g)/nic_eff + (g-1)·lat_nvl + (N-1)·lat_ib
  //     = 8000/4 + 4000/2 + 1000 + 2000 = 7000
  //   expert reduce-scatter, S = 8000 over {1, 3} (one per node, rail 1): 4000/2 + 2000 = 4000
  //   all-gathers the same: 11000 in all each way.
  //   optimizer shard: dense/dp + experts/(dp/ep) = 8000/4 + 4000/2 = 4000 parameters; ·30/20 = 6000.
  Topology topology(tiny_cluster());
  auto rp = experts_plan();
  std::vector<StageWork> work(1);
  work[0].params = 12000;
  work[0].expert_params = 4000;
  for (int d : {1, 0}) {  // dp rank 0's expert group is {0, 2}: the same shape
    auto tail = dp_tail(topology, rp, work, 0, d);
    EXPECT_EQ(tail.reduce_scatter_ns, 7000 + 4000) << d;
    EXPECT_EQ(tail.optimizer_ns, 6000) << d;
    EXPECT_EQ(tail.all_gather_ns, 7000 + 4000) << d;
    EXPECT_EQ(tail.total_ns(), 28000) << d;
  }
}

TEST(StepParts, GpuMemoryIsZeroOne) {
  // A V placement by hand: 4 stages on 2 ranks, rank 0 holds stages 0 and 3, rank 1 stages 1 and 2;
  // dp 4, ep 2 (experts' optimizer states sharded over dp/ep = 2). docs §8: 2 + 4 bytes per held parameter,
  // 12 per parameter of the optimizer shard.
  ResolvedPlan rp;
  rp.plan.pp = 2;
  rp.plan.dp = 4;
  rp.plan.ep = 2;
  rp.stages = 4;
  rp.stage_to_rank = {0, 1, 1, 0};
  std::vector<StageWork> work(4);
  double params[4] = {1000, 2000, 3000, 6000}, experts[4] = {0, 400, 800, 1600};
  for (int s = 0; s < 4; ++s) {
    work[static_cast<std::size_t>(s)].params = params[s];
    work[static_cast<std::size_t>(s)].expert_params = experts[s];
  }
  // Rank 0: 1000 + 6000 = 7000 held, 1600 experts, 5400 dense: 14000, 28000, (5400/4 + 1600/2)·12 = 25800.
  auto m0 = gpu_memory(rp, work, 0, 12345);
  EXPECT_DOUBLE_EQ(m0.params, 14000);
  EXPECT_DOUBLE_EQ(m0.grads, 28000);
  EXPECT_DOUBLE_EQ(m0.optimizer, 25800);
  EXPECT_DOUBLE_EQ(m0.activations, 12345);
  EXPECT_DOUBLE_EQ(m0.total(), 14000 + 28000 + 25800 + 12345);
  // Rank 1: 2000 + 3000 = 5000 held, 1200 experts, 3800 dense: 10000, 20000, (950 + 600)·12 = 18600.
  auto m1 = gpu_memory(rp, work, 1, 0);
  EXPECT_DOUBLE_EQ(m1.params, 10000);
  EXPECT_DOUBLE_EQ(m1.grads, 20000);
  EXPECT_DOUBLE_EQ(m1.optimizer, 18600);
  EXPECT_DOUBLE_EQ(m1.activations, 0);
  // BF16 moments (DeepSeek-V3 §3.3.3): FP32 master 4 + two moments 2 each = 8 per shard parameter:
  // rank 1 (950 + 600)·8 = 12400; FP8 precision chooses them unless --adam-moments fp32 says otherwise.
  rp.plan.adam_moment_bytes = 2;
  EXPECT_DOUBLE_EQ(gpu_memory(rp, work, 1, 0).optimizer, 12400);
  rp.plan.adam_moment_bytes = 0;
  rp.plan.precision = Precision::FP8;
  EXPECT_DOUBLE_EQ(gpu_memory(rp, work, 1, 0).optimizer, 12400);
  rp.plan.adam_moment_bytes = 4;
  EXPECT_DOUBLE_EQ(gpu_memory(rp, work, 1, 0).optimizer, 18600);

  // The tiny GPT, 1F1B, dp 2: rank 0 holds 23280 parameters: 46560, 93120, 23280/2·12 = 139680.
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto tiny = resolve(two_stages(2), model, topology.spec());
  auto m = gpu_memory(tiny, stage_work(model, topology, tiny, 0), 0, 0);
  EXPECT_DOUBLE_EQ(m.params, 46560);
  EXPECT_DOUBLE_EQ(m.grads, 93120);
  EXPECT_DOUBLE_EQ(m.optimizer, 139680);
}

Span compute_span(int rank, Action action, std::int64_t start, std::int64_t end) {
  Span s;
  s.rank = rank;
  s.stream = Stream::Compute;
  s.action = action;
  s.start_ns = start;
  s.end_ns = end;
  return s;
}

TEST(StepParts, OverlayEpPlacesAllToAllsAndCountsExposure) {
  // Two ranks in a V: rank 0 holds stages 0 and 3, rank 1 stages 1 and 2. Hand-made EP costs:
  //   stage 0: F 30, I 40, pair-exposed 25; stage 1: F 50, I 60; stage 2: none; stage 3: F 70, I 80, pair-exposed 5.
  std::vector<StageWork> work(4);
  work[0].ep_ns[PassKind::F] = 30, work[0].ep_ns[PassKind::I] = 40, work[0].pair_exposed_ns = 25;
  work[1].ep_ns[PassKind::F] = 50, work[1].ep_ns[PassKind::I] = 60;
  work[3].ep_ns[PassKind::F] = 70, work[3].ep_ns[PassKind::I] = 80, work[3].pair_exposed_ns = 5;
  Timeline t;
  Schedule two_ranks;
  two_ranks.ranks = 2;
  t.schedule = std::make_shared<const Schedule>(two_ranks);
  auto pair_a = Action::overlap({Op::F, 0, 1}, {Op::B, 3, 0});
  auto pair_b = Action::overlap({Op::F, 3, 0}, {Op::B, 0, 1});
  t.spans = {
      compute_span(0, Action::single(Op::F, 0, 0), 0, 100),
      compute_span(0, Action::single(Op::RecvB, 0, 0), 100, 150),  // a wait, not compute: no EP
      compute_span(0, Action::single(Op::I, 0, 0), 200, 350),
      compute_span(0, Action::single(Op::W, 0, 0), 350, 400),      // W has no all-to-all
      compute_span(0, pair_a, 400, 1000),
      compute_span(0, pair_b, 1000, 1500),
      compute_span(1, Action::single(Op::F, 1, 0), 100, 300),
      compute_span(1, Action::single(Op::F, 2, 0), 300, 400),      // stage 2 has no experts
      compute_span(1, Action::single(Op::B, 1, 0), 500, 700),      // a fused B pays I's all-to-all
      compute_span(1, Action::single(Op::W, 1, 0), 700, 800),
  };
  auto exposed = overlay_ep(t, work);
  // In line: the all-to-all ends with the action. Pairs: from the pair's start, F-half's forward plus the
  // B-half's backward all-to-all: pair_a 30 + 80 = 110, pair_b 70 + 40 = 110; exposure = the F-half's
  // stage's pair_exposed_ns.
  //   rank 0: 30 (F) + 40 (I) + 25 (pair_a, stage 0) + 5 (pair_b, stage 3) = 100
  //   rank 1: 50 (F) + 0 (stage 2) + 60 (B) = 110
  EXPECT_EQ(exposed, (std::vector<std::int64_t>{100, 110}));
  struct Expected {
    int rank;
    Action action;
    std::int64_t start, end;
  };
  std::vector<Expected> expected{
      {0, Action::single(Op::F, 0, 0), 70, 100},  {0, Action::single(Op::I, 0, 0), 310, 350},
      {0, pair_a, 400, 510},                      {0, pair_b, 1000, 1110},
      {1, Action::single(Op::F, 1, 0), 250, 300}, {1, Action::single(Op::B, 1, 0), 640, 700},
  };
  std::vector<Span> ep;
  for (auto& s : t.spans)
    if (s.stream == Stream::EP) ep.push_back(s);
  ASSERT_EQ(ep.size(), expected.size());
  for (std::size_t i = 0; i < ep.size(); ++i) {
    EXPECT_EQ(ep[i].rank, expected[i].rank) << i;
    EXPECT_EQ(ep[i].action, expected[i].action) << i;
    EXPECT_EQ(ep[i].start_ns, expected[i].start) << i;
    EXPECT_EQ(ep[i].end_ns, expected[i].end) << i;
    EXPECT_STREQ(ep[i].label, "dispatch + combine") << i;
  }
  // Sorted by (rank, stream, start), nothing lost.
  EXPECT_EQ(t.spans.size(), 10u + 6u);
  for (std::size_t i = 1; i < t.spans.size(); ++i) {
    auto& a = t.spans[i - 1];
    auto& b = t.spans[i];
    EXPECT_LE(std::tie(a.rank, a.stream, a.start_ns), std::tie(b.rank, b.stream, b.start_ns)) << i;
  }
}

TEST(StepParts, ThroughputAndMfuByHand) {
  // pp 2, dp 2, 4 micro-batches of 1: global batch 8 sequences of 50 = 400 tokens; 4 GPUs of 1 TFLOP/s.
  // Step 1 ms: 400 / 1e-3 = 400000 tokens/s, ·86400 = 3.456e10 per day.
  // FLOPs per token (F + I + W over all layers / T = 50), docs §2 and §4:
  //   causal: layer 2124000 + 2328000 + 1920000 = 6372000; two layers 12744000; head 3·400000 = 1200000;
  //     13944000 / 50 = 278880 per token → MFU = 278880·400 / (4·1e12·1e-3) = 0.027888.
  //   full (s keys): layer F 1920000 + 4·50·50·40 = 2320000, I 1920000 + 800000 = 2720000, W 1920000
  //     = 6960000; 2·6960000 + 1200000 = 15120000 / 50 = 302400 → MFU = 302400·400 / 4e9 = 0.03024.
  auto model = tiny_model();
  auto cluster = tiny_cluster();
  StepReport report;
  report.plan = resolve(two_stages(2, 4), model, cluster);
  ASSERT_EQ(report.plan.plan.global_batch, 8);
  report.step_ns = 1'000'000;
  add_throughput(report, model, cluster.gpu);
  EXPECT_NEAR(report.tokens_per_s, 400000, 1e-6);
  EXPECT_NEAR(report.tokens_per_day, 3.456e10, 1e-3);
  EXPECT_NEAR(report.mfu_causal, 0.027888, 1e-15);
  EXPECT_NEAR(report.mfu_full, 0.03024, 1e-15);
}

TEST(StepParts, SimulateStepTwoStages1F1BByHand) {
  // pp 2, 1F1B, 2 micro-batches, dp 2, Megatron order: the pipeline of replica 0 is GPU 0 (node 0) → GPU 2
  // (node 1), so every hand-off crosses IB: 2000 + 4000 bytes / 2 bytes/ns = 4000 ns (§9).
  // F0 = 11280, B0 = 13480 + 7760 = 21240 (stage 0); F1 = 13880, B1 = 16580 + 9360 = 25940 (stage 1).
  //   rank 0: F mb0 [0, 11280], F mb1 [11280, 22560]
  //   rank 1: F mb0 [11280 + 4000 = 15280, 29160], B mb0 [29160, 55100], F mb1 [55100, 68980],
  //           B mb1 [68980, 94920]
  //   rank 0: B mb0 [55100 + 4000 = 59100, 80340], B mb1 [94920 + 4000 = 98920, 120160]
  //   makespan = F0 + 2·4000 + 2·(F1 + B1) + B0 = 11280 + 8000 + 79640 + 21240 = 120160.
  // DP tails (see DataParallelTailInsideOneNode): rank 0 31100 from 120160 → 151260; rank 1 31150 from
  //   94920 → 126070. Step = 151260; the DP time after the last pipeline end = 31100.
  // Exposed PP: rank 0 waits a full transfer for each backward's gradient (4000 + 4000); rank 1 waits 4000
  //   for mb 0's activation, none for mb 1's.
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto report = simulate_step(model, topology, two_stages(2));
  EXPECT_EQ(report.pipeline_ns, 120160);
  EXPECT_EQ(report.step_ns, 151260);
  EXPECT_EQ(report.exposed_dp_ns, 31100);
  EXPECT_EQ(report.exposed_pp_ns, 8000);
  EXPECT_EQ(report.exposed_ep_ns, 0);
  EXPECT_EQ(report.metrics.ranks[0].last_end_ns, 120160);
  EXPECT_EQ(report.metrics.ranks[1].last_end_ns, 94920);

  struct Expected {
    int rank;
    const char* action;
    std::int64_t start, end;
  };
  std::vector<Expected> expected{
      {0, "0F0", 0, 11280},      {0, "0F1", 11280, 22560},  {0, "0B0", 59100, 80340},  {0, "0B1", 98920, 120160},
      {1, "1F0", 15280, 29160},  {1, "1B0", 29160, 55100},  {1, "1F1", 55100, 68980},  {1, "1B1", 68980, 94920},
  };
  std::vector<Span> compute;
  for (auto& s : report.timeline.spans)
    if (s.stream == Stream::Compute && s.action.is_compute()) compute.push_back(s);
  ASSERT_EQ(compute.size(), expected.size());
  for (std::size_t i = 0; i < compute.size(); ++i) {
    EXPECT_EQ(compute[i].rank, expected[i].rank) << i;
    EXPECT_EQ(to_string(compute[i].action), expected[i].action) << i;
    EXPECT_EQ(compute[i].start_ns, expected[i].start) << i;
    EXPECT_EQ(compute[i].end_ns, expected[i].end) << i;
  }
  // The DP stream: reduce-scatter, optimizer, all-gather from each rank's last compute end.
  std::vector<std::pair<std::int64_t, std::int64_t>> dp[2];
  for (auto& s : report.timeline.spans)
    if (s.stream == Stream::DP) dp[static_cast<std::size_t>(s.rank)].emplace_back(s.start_ns, s.end_ns);
  using Interval = std::pair<std::int64_t, std::int64_t>;
  EXPECT_EQ(dp[0], (std::vector<Interval>{{120160, 126980}, {126980, 144440}, {144440, 151260}}));
  EXPECT_EQ(dp[1], (std::vector<Interval>{{94920, 101750}, {101750, 119240}, {119240, 126070}}));

  // Memory: rank 0 holds two micro-batches of 64000 bytes at its peak (F mb1 before B mb0), rank 1 one of
  // 82000; weights, gradients and optimizer shard as in GpuMemoryIsZeroOne (rank 1: 23320 parameters).
  ASSERT_EQ(report.memory.size(), 2u);
  EXPECT_DOUBLE_EQ(report.memory[0].activations, 128000);
  EXPECT_DOUBLE_EQ(report.memory[0].total(), 46560 + 93120 + 139680 + 128000);
  EXPECT_DOUBLE_EQ(report.memory[1].activations, 82000);
  EXPECT_DOUBLE_EQ(report.memory[1].total(), 46640 + 93280 + 139920 + 82000);
  EXPECT_TRUE(report.fits);
  // Throughput: global batch dp·m·b = 4 sequences of 50 tokens over the step.
  EXPECT_NEAR(report.tokens_per_s, 200 / 151260e-9, 1e-9 * report.tokens_per_s);
}

// --overlap-grad-reduce on the plan above: each stage holds 2 layers (embedding + layer 1; layer 2 + head),
// so 2 buckets of P/2 parameters, S = P bytes each, in a ring of 2 inside one node: P/8 + 1000 ns
// (rank 0: 3910, rank 1: 3915). They are ready halfway through and at the end of the stage's last B:
//   rank 0: B mb1 [98920, 120160]: buckets at 109540 -> [109540, 113450] and 120160 -> [120160, 124070];
//           optimizer 17460 -> 141530, all-gather 6820 -> 148350.
//   rank 1: B mb1 [68980, 94920]: buckets [81950, 85865] and [94920, 98835]; 17490 -> 116325; 6830 -> 123155.
// Step 148350 instead of 151260; the pipeline is unchanged.
TEST(StepParts, OverlappedGradientReduceScatterByHand) {
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto plan = two_stages(2);
  plan.overlap_grad_reduce = true;
  auto report = simulate_step(model, topology, plan);
  EXPECT_EQ(report.pipeline_ns, 120160);
  EXPECT_EQ(report.step_ns, 148350);
  EXPECT_EQ(report.exposed_dp_ns, 148350 - 120160);
  std::vector<std::pair<std::int64_t, std::int64_t>> dp[2];
  for (auto& s : report.timeline.spans)
    if (s.stream == Stream::DP) dp[static_cast<std::size_t>(s.rank)].emplace_back(s.start_ns, s.end_ns);
  using Interval = std::pair<std::int64_t, std::int64_t>;
  EXPECT_EQ(dp[0], (std::vector<Interval>{{109540, 113450}, {120160, 124070}, {124070, 141530}, {141530, 148350}}));
  EXPECT_EQ(dp[1], (std::vector<Interval>{{81950, 85865}, {94920, 98835}, {98835, 116325}, {116325, 123155}}));
}

TEST(StepParts, SimulateStepSingleReplicaByHand) {
  // dp 1: GPUs 0 and 1 on node 0, hand-offs over NVLink: 1000 + 4000 / 4 = 2000 ns.
  //   makespan = F0 + 2·2000 + 2·(F1 + B1) + B0 = 11280 + 4000 + 79640 + 21240 = 116160; rank 1 ends at
  //   11280 + 2000 + 79640 = 92920. Tails: no collectives, optimizer over all parameters:
  //   rank 0: 23280·30/20 = 34920 → 151080; rank 1: 23320·30/20 = 34980 → 127900.
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto report = simulate_step(model, topology, two_stages(1));
  EXPECT_EQ(report.pipeline_ns, 116160);
  EXPECT_EQ(report.metrics.ranks[1].last_end_ns, 92920);
  EXPECT_EQ(report.step_ns, 151080);
  EXPECT_EQ(report.exposed_dp_ns, 34920);
}

// Regression: a plan that gives the global batch instead of the micro-batch count used to throw
// "microbatches is 0"; resolve() derives it and the whole step runs with the derived count.
TEST(StepParts, GlobalBatchDerivesMicrobatches) {
  auto model = load_model("llama3-70b");
  Topology topology(load_cluster("dgx-h100"));
  for (const char* schedule : {"1f1b", "zb-h1", "zb-v"}) {
    Plan p;
    p.schedule = schedule;
    p.pp = 8;
    p.microbatches = 0;
    p.global_batch = 1024;
    StepReport report;
    ASSERT_NO_THROW(report = simulate_step(model, topology, p)) << schedule;
    auto& plan = report.plan.plan;
    EXPECT_EQ(plan.dp, 1024 / 8) << schedule;  // dgx-h100: 128 nodes x 8 GPUs, pp 8
    EXPECT_EQ(plan.microbatches, 1024 / (plan.dp * plan.micro_batch_size)) << schedule;
    EXPECT_EQ(plan.microbatches, 8) << schedule;
    EXPECT_EQ(plan.global_batch, 1024) << schedule;
    EXPECT_EQ(report.timeline.schedule->microbatches, 8) << schedule;
    EXPECT_GT(report.step_ns, 0) << schedule;
  }
}

// Regression: on a dense model (no expert communication to hide) DualPipe's overlapped pair must cost the
// two halves' own passes, F(s) + B(t); it used to cost F(s) + 1.5 ms (the default I + W of a cost spec).
TEST(StepParts, DualPipeDensePairCostsFPlusB) {
  auto model = load_model("llama3-70b");
  Topology topology(load_cluster("dgx-h100"));
  Plan p;
  p.schedule = "dualpipe";
  p.pp = 4;
  p.microbatches = 8;
  auto report = simulate_step(model, topology, p);
  auto work = stage_work(model, topology, report.plan, 0);
  auto F = [&](int s) { return std::max<std::int64_t>(1, work[static_cast<std::size_t>(s)].compute_ns[PassKind::F]); };
  auto B = [&](int s) {
    auto& w = work[static_cast<std::size_t>(s)];
    return std::max<std::int64_t>(1, w.compute_ns[PassKind::I]) + std::max<std::int64_t>(1, w.compute_ns[PassKind::W]);
  };
  int pairs = 0;
  for (auto& span : report.timeline.spans) {
    if (span.stream != Stream::Compute || span.action.op != Op::OverlapFB) continue;
    ++pairs;
    int s = span.action.pass[0].stage, t = span.action.pass[1].stage;
    ASSERT_EQ(span.action.pass[1].op, Op::B) << to_string(span.action);
    EXPECT_EQ(span.end_ns - span.start_ns, F(s) + B(t)) << to_string(span.action);
  }
  EXPECT_GT(pairs, 0);
}

// A sweep's point asks for the figures only (StepDetail::Figures: the metrics pass, no timeline); every
// figure must be what the full step with its timeline reports, on plans with EP (DualPipe, ZB-V, pairs),
// stragglers across every replica, TP with sequence parallelism, interleaving, and --overlap-grad-reduce
// (which builds the timeline anyway).
TEST(StepParts, FiguresAloneEqualTheTimelinesFigures) {
  struct Case {
    const char* model;
    const char* cluster;
    const char* schedule;
    int pp, ep, tp, microbatches;
    bool full, overlap, stragglers;
  };
  std::vector<Case> cases{
      {"deepseek-v3", "deepseek-h800", "dualpipe", 16, 64, 1, 40, false, false, false},
      {"deepseek-v3", "deepseek-h800", "dualpipev", 8, 32, 1, 32, false, false, false},
      {"deepseek-v3", "deepseek-h800", "zb-v", 16, 64, 1, 48, false, false, false},
      {"deepseek-v3", "deepseek-h800", "zb-h2", 8, 64, 1, 24, false, true, false},
      {"deepseek-v3", "deepseek-h800", "dualpipe", 16, 64, 1, 40, true, false, true},
      {"llama3-70b", "dgx-h100", "interleaved-1f1b", 4, 1, 8, 16, false, false, false},
      {"llama3-70b", "dgx-h100", "1f1b", 8, 1, 4, 32, true, false, true},
  };
  for (auto& c : cases) {
    auto model = load_model(c.model);
    Topology topology(load_cluster(c.cluster));
    Plan p;
    p.schedule = c.schedule;
    p.pp = c.pp;
    p.ep = c.ep;
    p.tp = c.tp;
    p.microbatches = c.microbatches;
    p.full = c.full;
    p.overlap_grad_reduce = c.overlap;
    p.sequence_parallel = c.tp > 1;
    if (std::string(c.model) == "deepseek-v3") p.precision = Precision::FP8;
    std::vector<double> slow;
    if (c.stragglers) {
      slow.assign(static_cast<std::size_t>(topology.spec().total_gpus()), 1.0);
      slow[3] = 1.3;
      slow[slow.size() - 5] = 1.15;
    }
    auto whole = simulate_step(model, topology, p, slow, StepDetail::Timeline);
    auto figures = simulate_step(model, topology, p, slow, StepDetail::Figures);
    std::string name = std::string(c.schedule) + (c.full ? " --full" : "") + (c.overlap ? " --overlap-grad-reduce" : "");
    EXPECT_FALSE(whole.timeline.spans.empty()) << name;
    EXPECT_EQ(figures.timeline.spans.empty(), !c.overlap) << name;
    EXPECT_EQ(figures.step_ns, whole.step_ns) << name;
    EXPECT_EQ(figures.pipeline_ns, whole.pipeline_ns) << name;
    EXPECT_EQ(figures.exposed_ep_ns, whole.exposed_ep_ns) << name;
    EXPECT_EQ(figures.exposed_pp_ns, whole.exposed_pp_ns) << name;
    EXPECT_EQ(figures.exposed_dp_ns, whole.exposed_dp_ns) << name;
    EXPECT_EQ(figures.bubble_rate, whole.bubble_rate) << name;
    EXPECT_EQ(figures.tokens_per_s, whole.tokens_per_s) << name;
    EXPECT_EQ(figures.mfu, whole.mfu) << name;
    EXPECT_EQ(figures.compute_comm_ratio, whole.compute_comm_ratio) << name;
    EXPECT_EQ(figures.fits, whole.fits) << name;
    ASSERT_EQ(figures.memory.size(), whole.memory.size()) << name;
    for (std::size_t r = 0; r < whole.memory.size(); ++r) EXPECT_EQ(figures.memory[r].total(), whole.memory[r].total()) << name;
    expect_same(figures.metrics, whole.metrics, name);
    if (std::string(c.model) == "deepseek-v3") {
      EXPECT_GT(whole.exposed_ep_ns, 0) << name;  // so the EP check bites
    }
  }
}

}  // namespace
}  // namespace pipesim
