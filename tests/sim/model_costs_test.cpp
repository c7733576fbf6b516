// The cost model against hand arithmetic: a two-layer GPT (tests/sim/data/tiny-gpt.json) on a 2 x 2 GPU
// cluster (tiny-cluster.json) whose rates make every operator a whole number of nanoseconds. Each
// expected value below is derived in the comments from models/accounting.cpp's conventions and
// docs/cost-model.md §2, §6 and §9, never from the code's output.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/model.hpp"
#include "sim/model_costs.hpp"
#include "sim/plan.hpp"
#include "topologies/topology.hpp"

namespace pipesim {
namespace {

// Notation (docs/cost-model.md §1): h = 40, a = 4 heads of d = 10, f = 160 (FFN 4h), V = 100, s = 50,
// l = 2 layers, BF16 (2 bytes per element). Micro-batch 1 unless said: T = b·s = 50 tokens.
// Causal attention (pipesim's default): a query attends (s + 1)/2 = 25.5 keys on average.
//
// Rates (tiny-cluster.json, docs/cost-model.md §6):
//   GEMM: every GEMM has h = 40 as its smallest of (m, n, k), so efficiency = 0.5 × min(1, 40/80) = 0.25
//         and a GEMM computes at 1 TFLOP/s × 0.25 = 250 FLOP/ns;
//   attention core (no GEMM shape, k = 0): the plain maximum efficiency 0.5, 500 FLOP/ns;
//   memory: 40 GB/s × 0.5 = 20 bytes/ns.
//
// Operators of one transformer layer at T = 50 (FLOPs and HBM bytes per pass, accounting.cpp):
//   linear X(T×in)·A(in×out): FLOPs 2·T·in·out in each of F, I, W; bytes F = I = 2·in·out + 2·T·(in+out),
//     W = 2·T·(in+out) + 4·in·out (FP32 gradient accumulation);
//   elementwise over width w: bytes F = 2·T·w·2 = 4Tw, I = 6Tw, W none; no FLOPs.
//
//   attention.norm (w = h):  F 4·50·40 = 8000 B → 400 ns;       I 12000 B → 600 ns
//   attention.qkv (40→120):  FLOPs 2·50·40·120 = 480000 → 1920 ns each pass;
//                            bytes F/I 2·4800 + 2·50·160 = 25600 → 1280 ns; W 16000 + 19200 = 35200 → 1760 ns
//                            ⇒ F = I = W = 1920 (compute-bound)
//   attention.core:          FLOPs F 2·T·keys·a·(d+d) = 2·50·25.5·4·20 = 204000 → 408 ns;
//                            bytes F (q, k, v in; output) 2·50·(40+80) + 2·50·40 = 16000 → 800 ns ⇒ F = 800;
//                            I twice both: 816 vs 1600 ⇒ I = 1600; W nothing (memory-bound both ways)
//   attention.out (40→40):   FLOPs 2·50·40·40 = 160000 → 640 ns; bytes F/I 3200 + 8000 = 11200 → 560 ns;
//                            W 8000 + 6400 = 14400 → 720 ns ⇒ F = I = 640, W = 720 (memory-bound)
//   mlp.norm (w = h):        F 400, I 600
//   mlp.fc1 (40→160):        FLOPs 2·50·40·160 = 640000 → 2560 ns; bytes F/I 12800 + 20000 = 32800 → 1640;
//                            W 20000 + 25600 = 45600 → 2280 ⇒ 2560 each pass
//   mlp.gelu (w = f):        F 4·50·160 = 32000 B → 1600 ns; I 48000 B → 2400 ns
//   mlp.fc2 (160→40):        as fc1, 2560 each pass
//   layer: F = 400+1920+800+640+400+2560+1600+2560 = 10880
//          I = 600+1920+1600+640+600+2560+2400+2560 = 12880
//          W = 1920+720+2560+2560 = 7760
// Embedding (elementwise, w = h): F 8000 B → 400, I 12000 B → 600, W 0.
// Head: norm F 400 / I 600; logits (40→100): FLOPs 2·50·40·100 = 400000 → 1600 ns, bytes F/I
//   8000 + 14000 = 22000 → 1100, W 14000 + 16000 = 30000 → 1500 ⇒ 1600 each pass; cross-entropy
//   (w = V): F 4·50·100 = 20000 B → 1000, I 30000 B → 1500.
//   head: F = 400+1600+1000 = 3000, I = 600+1600+1500 = 3700, W = 1600.
//
// Parameters: layer = norms 2h + qkv 3h² + out h² + fc1 hf + fc2 fh = 80 + 4800 + 1600 + 6400 + 6400 = 19280;
//   embedding V·h = 4000; head norm h + logits h·V = 4040.
// Activations kept from F until I (saved_until_I, bytes): layer = norm 2Th + qkv input 2Th + core q,k,v 6Th
//   + out input 2Th + norm 2Th + fc1 input 2Th + gelu 2Tf + fc2 input 2Tf = 16·2000 + 4·8000 = 64000
//   (32·T·h, Korthikanti's 34sbh without dropout masks); head = norm 4000 + logits input 4000 + logits 2TV
//   10000 = 18000. Kept from I until W (each linear's input and output gradient): qkv 2T(h+3h) = 16000,
//   out 2T·2h = 8000, fc1 and fc2 2T(h+f) = 20000 each: layer 64000; logits 2T(h+V) = 14000.

std::string data(const char* file) { return std::string(PIPESIM_SIM_DATA) + "/" + file; }

ModelSpec tiny_model() { return load_model(data("tiny-gpt.json")); }
ClusterSpec tiny_cluster() { return load_cluster(data("tiny-cluster.json")); }

// Two 1F1B stages: stage 0 = embedding + layer 1, stage 1 = layer 2 + head. dp defaults to 4 GPUs / pp 2.
Plan two_stages(int microbatches = 2) {
  Plan p;
  p.schedule = "1f1b";
  p.pp = 2;
  p.microbatches = microbatches;
  return p;
}

TEST(ModelCosts, FixturesLoadAsWritten) {
  auto model = tiny_model();
  EXPECT_EQ(model.layers, 2);
  EXPECT_EQ(model.hidden, 40);
  EXPECT_EQ(model.head_dim, 10);
  EXPECT_EQ(model.ffn_hidden, 160);
  EXPECT_FALSE(model.moe);
  auto cluster = tiny_cluster();
  EXPECT_EQ(cluster.total_gpus(), 4);
  EXPECT_EQ(cluster.gpu.gemm_efficiency_knee, 80);
}

TEST(ModelCosts, StageWorkOfTwoStagesByHand) {
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto rp = resolve(two_stages(), model, topology.spec());
  ASSERT_EQ(rp.stage_layers.size(), 2u);
  EXPECT_EQ(rp.stage_layers[0], (std::vector<int>{0, 1}));  // embedding, layer 1
  EXPECT_EQ(rp.stage_layers[1], (std::vector<int>{2, 3}));  // layer 2, head
  auto work = stage_work(model, topology, rp, 0);
  ASSERT_EQ(work.size(), 2u);

  // Stage 0: embedding + layer. F 400 + 10880, I 600 + 12880, W 0 + 7760.
  EXPECT_EQ(work[0].compute_ns[PassKind::F], 11280);
  EXPECT_EQ(work[0].compute_ns[PassKind::I], 13480);
  EXPECT_EQ(work[0].compute_ns[PassKind::W], 7760);
  // Stage 1: layer + head. F 10880 + 3000, I 12880 + 3700, W 7760 + 1600.
  EXPECT_EQ(work[1].compute_ns[PassKind::F], 13880);
  EXPECT_EQ(work[1].compute_ns[PassKind::I], 16580);
  EXPECT_EQ(work[1].compute_ns[PassKind::W], 9360);

  // FLOPs (docs/cost-model.md §2, causal): layer F = 24sbh² + 4sbh·(s+1)/2 = 1920000 + 204000 = 2124000,
  // I = 1920000 + 408000 = 2328000, W = 24sbh² = 1920000; head 2ThV = 400000 per pass; embedding none.
  EXPECT_DOUBLE_EQ(work[0].flops[PassKind::F], 2124000);
  EXPECT_DOUBLE_EQ(work[0].flops[PassKind::I], 2328000);
  EXPECT_DOUBLE_EQ(work[0].flops[PassKind::W], 1920000);
  EXPECT_DOUBLE_EQ(work[1].flops[PassKind::F], 2524000);
  EXPECT_DOUBLE_EQ(work[1].flops[PassKind::I], 2728000);
  EXPECT_DOUBLE_EQ(work[1].flops[PassKind::W], 2320000);

  // Parameters: 4000 + 19280 and 19280 + 4040; no experts.
  EXPECT_DOUBLE_EQ(work[0].params, 23280);
  EXPECT_DOUBLE_EQ(work[1].params, 23320);
  EXPECT_DOUBLE_EQ(work[0].expert_params, 0);
  EXPECT_DOUBLE_EQ(work[1].expert_params, 0);

  // Activations: stage 0 = layer 64000 (the embedding keeps nothing); stage 1 = 64000 + 18000.
  // Until W: 64000, and 64000 + 14000.
  EXPECT_DOUBLE_EQ(work[0].activation_bytes, 64000);
  EXPECT_DOUBLE_EQ(work[1].activation_bytes, 82000);
  EXPECT_DOUBLE_EQ(work[0].activation_w_bytes, 64000);
  EXPECT_DOUBLE_EQ(work[1].activation_w_bytes, 78000);

  // A dense model has no expert all-to-all and nothing for a pair to hide.
  for (auto& w : work) {
    EXPECT_EQ(w.ep_ns[PassKind::F], 0);
    EXPECT_EQ(w.ep_ns[PassKind::I], 0);
    EXPECT_EQ(w.pair_exposed_ns, 0);
  }
}

TEST(ModelCosts, CostSpecOfTwoStagesByHand) {
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto rp = resolve(two_stages(), model, topology.spec());
  ASSERT_EQ(rp.plan.dp, 2);
  auto mc = model_costs(model, topology, rp, 0);
  auto& c = mc.spec;
  ASSERT_EQ(c.stages.size(), 2u);
  // F = compute F + EP (0), I = compute I + EP (0), W = compute W.
  EXPECT_EQ(c.stages[0].F_ns, 11280);
  EXPECT_EQ(c.stages[0].I_ns, 13480);
  EXPECT_EQ(c.stages[0].W_ns, 7760);
  EXPECT_EQ(c.stages[1].F_ns, 13880);
  EXPECT_EQ(c.stages[1].I_ns, 16580);
  EXPECT_EQ(c.stages[1].W_ns, 9360);
  for (auto& s : c.stages) {
    EXPECT_FALSE(s.B_ns.has_value());   // resolve_costs() derives I + W
    EXPECT_FALSE(s.FB_ns.has_value());  // no pairs on a 1F1B rank, nothing to overlap
    // Hand-off: b·s·h·2/tp = 1·50·40·2/1 = 4000 bytes.
    EXPECT_EQ(s.activation_bytes, 4000);
  }
  EXPECT_EQ(c.stages[0].activation_memory, 64000);
  EXPECT_EQ(c.stages[1].activation_memory, 82000);
  ASSERT_TRUE(c.stages[0].activation_memory_w.has_value());
  EXPECT_EQ(*c.stages[0].activation_memory_w, 64000);  // min(until W, until I)
  EXPECT_EQ(*c.stages[1].activation_memory_w, 78000);

  // Megatron order (TP, DP, PP): gpu(pp, dp) = dp + 2·pp, so pp ranks 0 and 1 of replica 0 are GPUs 0 and 2,
  // on different nodes. Route 0 → 2: GPU0 → NIC0 (4 GB/s) → rail-0 leaf (2 GB/s, 2 us) → NIC0 of node 1 → GPU2
  // (docs/cost-model.md §9): latency 2000 ns, bandwidth the slowest link, 2 bytes/ns.
  ASSERT_EQ(c.rank_links.size(), 4u);
  EXPECT_EQ(c.rank_links[0 * 2 + 1].latency_ns, 2000);
  EXPECT_DOUBLE_EQ(c.rank_links[0 * 2 + 1].bandwidth_bytes_per_ns, 2.0);
  EXPECT_EQ(c.rank_links[1 * 2 + 0].latency_ns, 2000);
  EXPECT_DOUBLE_EQ(c.rank_links[1 * 2 + 0].bandwidth_bytes_per_ns, 2.0);
  EXPECT_EQ(c.rank_slowdown, (std::vector<double>{1.0, 1.0}));

  // The stage work model_costs() reports is stage_work()'s.
  ASSERT_EQ(mc.stages.size(), 2u);
  EXPECT_EQ(mc.stages[1].compute_ns[PassKind::I], 16580);
}

TEST(ModelCosts, PipelineLinksFollowPlacementAndSlowdownFollowsGpus) {
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto plan = two_stages();
  plan.placement = Placement::TpPpDp;  // gpu(pp, dp) = pp + 2·dp: the pipeline of replica 0 is GPUs 0 and 1
  auto rp = resolve(plan, model, topology.spec());
  // Slowdown per GPU; replica 1's pipeline is GPUs gpu(0, 1) = 2 and gpu(1, 1) = 3.
  std::vector<double> slowdown{1.0, 1.0, 1.25, 2.0};
  auto mc = model_costs(model, topology, rp, 1, slowdown);
  // GPU 2 → GPU 3 inside node 1: GPU → NVSwitch (4 GB/s, 1 us) → GPU: 1000 ns, 4 bytes/ns.
  EXPECT_EQ(mc.spec.rank_links[1].latency_ns, 1000);
  EXPECT_DOUBLE_EQ(mc.spec.rank_links[1].bandwidth_bytes_per_ns, 4.0);
  EXPECT_EQ(mc.spec.rank_links[2].latency_ns, 1000);
  EXPECT_DOUBLE_EQ(mc.spec.rank_links[2].bandwidth_bytes_per_ns, 4.0);
  EXPECT_EQ(mc.spec.rank_slowdown, (std::vector<double>{1.25, 2.0}));
  // Slowdowns scale the engine's durations, not the cost spec.
  EXPECT_EQ(mc.spec.stages[0].F_ns, 11280);
}

TEST(ModelCosts, WholeModelOnOneStageAtMicroBatchTwo) {
  // pp 1, micro-batch 2: T = 100. Every GEMM still has 40 as its smallest dimension (250 FLOP/ns); FLOPs and
  // activation bytes double, weight bytes do not, so attention.out's W turns compute-bound:
  //   attention.out W: FLOPs 2·100·40·40 = 320000 → 1280 ns; bytes 2·100·80 + 4·1600 = 22400 → 1120 ns ⇒ 1280.
  // Every other operator doubles (its time is linear in T in the regime it was in at T = 50):
  //   qkv 3840 (bytes F 9600 + 32000 = 41600 → 2080, W 32000 + 19200 = 51200 → 2560, both below);
  //   core F 1600, I 3200 (FLOPs 816 and 1632 ns, still below); fc1/fc2 5120 (bytes W 40000 + 25600 →
  //   3280, below); norms, gelu, cross-entropy, embedding double.
  //   layer: F 2·10880 = 21760, I 2·12880 = 25760, W 2·1920 + 1280 + 2·5120 = 15360 (not 2·7760).
  //   head: F 6000, I 7400, W 3200 (logits W bytes 28000 + 16000 = 44000 → 2200, below 3200).
  //   embedding: F 800, I 1200.
  // Stage: F = 800 + 2·21760 + 6000 = 50320, I = 1200 + 2·25760 + 7400 = 60120, W = 2·15360 + 3200 = 33920.
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  Plan p;
  p.schedule = "1f1b";
  p.pp = 1;
  p.microbatches = 1;
  p.micro_batch_size = 2;
  auto rp = resolve(p, model, topology.spec());
  ASSERT_EQ(rp.stage_layers[0], (std::vector<int>{0, 1, 2, 3}));
  auto mc = model_costs(model, topology, rp, 0);
  auto& w = mc.stages[0];
  EXPECT_EQ(w.compute_ns[PassKind::F], 50320);
  EXPECT_EQ(w.compute_ns[PassKind::I], 60120);
  EXPECT_EQ(w.compute_ns[PassKind::W], 33920);
  // Parameters do not depend on the shape: 4000 + 2·19280 + 4040.
  EXPECT_DOUBLE_EQ(w.params, 46600);
  // Activations at T = 100: layer 32·T·h = 128000 each; head 2Th + 2Th + 2TV = 8000 + 8000 + 20000.
  EXPECT_DOUBLE_EQ(w.activation_bytes, 2 * 128000 + 36000);
  // Until W: 128000 per layer; logits 2T(h+V) = 28000.
  EXPECT_DOUBLE_EQ(w.activation_w_bytes, 2 * 128000 + 28000);
  EXPECT_EQ(mc.spec.stages[0].activation_bytes, 2 * 50 * 40 * 2);
  EXPECT_EQ(mc.spec.stages[0].F_ns, 50320);
  EXPECT_EQ(mc.spec.stages[0].I_ns, 60120);
  EXPECT_EQ(mc.spec.stages[0].W_ns, 33920);
  EXPECT_EQ(mc.spec.rank_links.size(), 1u);
}

// Megatron tensor parallelism on the tiny cluster (docs/cost-model.md §13): tp 2 inside a node, an
// all-reduce of the layer's activations T·h·2 = 50·40·2 = 4000 bytes is 2·(1/2)·4000/4 + 2·1·1000 = 3000 ns
// (§10); two in F and two in I per transformer layer, one layer per stage: 6000 each, in line. Sequence
// parallelism: reduce-scatter + all-gather, (1/2)·4000/4 + 1000 each, the same 3000; the two norms and
// the two column-parallel linears' inputs (qkv, fc1) keep half of their 50·40·2 = 4000 bytes each.
TEST(ModelCosts, TensorParallelCommunicationByHand) {
  auto model = tiny_model();
  Topology topology(tiny_cluster());
  auto plan = two_stages();
  plan.tp = 2;
  auto rp = resolve(plan, model, topology.spec());
  ASSERT_EQ(rp.plan.dp, 1);
  auto work = stage_work(model, topology, rp, 0);
  auto costs = model_costs(model, topology, rp, 0);
  for (int s = 0; s < 2; ++s) {
    auto& w = work[static_cast<std::size_t>(s)];
    EXPECT_EQ(w.tp_ns[PassKind::F], 6000) << s;
    EXPECT_EQ(w.tp_ns[PassKind::I], 6000) << s;
    EXPECT_EQ(w.tp_ns[PassKind::W], 0) << s;
    auto& c = costs.spec.stages[static_cast<std::size_t>(s)];
    EXPECT_EQ(c.F_ns, w.compute_ns[PassKind::F] + 6000);
    EXPECT_EQ(c.I_ns, w.compute_ns[PassKind::I] + 6000);
  }
  plan.sequence_parallel = true;
  auto sp = resolve(plan, model, topology.spec());
  auto sp_work = stage_work(model, topology, sp, 0);
  EXPECT_EQ(sp_work[0].tp_ns[PassKind::F], 6000);
  EXPECT_DOUBLE_EQ(work[0].activation_bytes - sp_work[0].activation_bytes, 4 * 2000);
}

// The hardware profile's communication measurements (docs/hardware-profiles.md §5): a fixed software time per
// pipeline transfer on top of the route's latency, the "p2p" table capping its bandwidth, and TP collectives
// at the "all_reduce" table's bus bandwidth (nccl-tests: t = 2(n-1)/n x S / busbw).
TEST(ModelCosts, ProfileCommunicationMeasurementsReplaceTheTopologyModel) {
  auto model = tiny_model();
  auto cluster = tiny_cluster();
  cluster.profile.p2p_overhead_us = {0.5, "test"};
  cluster.profile.comm_GBps["p2p"] = RateTable{{{1, 2.5}}, "test"};
  cluster.profile.comm_GBps["all_reduce"] = RateTable{{{1, 0.5}}, "test"};
  Topology topology(cluster);
  auto plan = two_stages();
  plan.placement = Placement::TpPpDp;  // replica 0's pipeline: GPUs 0 -> 1 inside node 0
  auto mc = model_costs(model, topology, resolve(plan, model, topology.spec()), 0);
  // NVLink 1 us + 0.5 us overhead; min(4 bytes/ns of NVLink, 2.5 measured).
  EXPECT_EQ(mc.spec.rank_links[1].latency_ns, 1500);
  EXPECT_DOUBLE_EQ(mc.spec.rank_links[1].bandwidth_bytes_per_ns, 2.5);
  plan.tp = 2;
  plan.placement = Placement::TpDpPp;
  auto rp = resolve(plan, model, topology.spec());
  auto work = stage_work(model, topology, rp, 0);
  double S = 1.0 * 50 * 40 * 2;  // one micro-batch's activations: seq 50 x hidden 40 x 2 bytes
  std::int64_t all_reduce = static_cast<std::int64_t>(2.0 * (2 - 1) / 2 * S / 0.5);  // 8000 ns
  EXPECT_EQ(work[0].tp_ns[PassKind::F], 2 * all_reduce);
  EXPECT_EQ(work[1].tp_ns[PassKind::I], 2 * all_reduce);
  // A table for a collective the plan does not use changes nothing: sequence parallelism's RS + AG stay
  // on the topology (3000 ns per pair, TensorParallelCommunicationByHand).
  plan.sequence_parallel = true;
  EXPECT_EQ(stage_work(model, topology, resolve(plan, model, topology.spec()), 0)[0].tp_ns[PassKind::F], 6000);
}

}  // namespace
}  // namespace pipesim
