// The whole-step model: plans resolve (and refuse) as documented, the accounting stays consistent from
// layers to GPUs (every parameter held once per replica, twice under DualPipe), the overlapped pair hides
// communication, and --full agrees with the representative run on a symmetric plan and sees a straggler.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/error.hpp"
#include "models/accounting.hpp"
#include "schedules/registry.hpp"
#include "sim/model_costs.hpp"
#include "sim/replica_view.hpp"
#include "sim/step.hpp"

namespace pipesim {
namespace {

Plan deepseek_plan(const char* schedule) {
  Plan p;
  p.schedule = schedule;
  p.pp = 16;
  p.ep = 64;
  p.microbatches = 40;
  p.precision = Precision::FP8;
  return p;
}

TEST(Plan, ResolvesDeepSeekLayout) {
  auto model = load_model("deepseek-v3");
  auto cluster = load_cluster("deepseek-h800");
  auto r = resolve(deepseek_plan("dualpipe"), model, cluster);
  EXPECT_EQ(r.plan.dp, 128);
  EXPECT_EQ(r.gpus, 2048);
  EXPECT_EQ(r.plan.global_batch, 128 * 40);
  // 61 layers over 16 stages: 3 each and one more on 13 middle stages; embedding first, head and MTP last.
  int layers = 0;
  for (int s0 = 0; s0 < 16; ++s0) layers += static_cast<int>(r.stage_layers[static_cast<std::size_t>(s0)].size());
  EXPECT_EQ(layers, 61 + 1 + 2);  // + embedding + head + MTP on the forward route
  EXPECT_EQ(r.stage_layers[0].front(), 0);
  EXPECT_EQ(r.stage_layers[15].back(), 63);
  EXPECT_EQ(r.stage_layers[0].size(), 1u + 3);
  EXPECT_EQ(r.stage_layers[7].size(), 4u);
  // Megatron order: TP innermost, then DP, then PP; an EP group of 64 spans 8 nodes of one stage.
  EXPECT_EQ(r.gpu(1, 0), 128);
  auto ep = r.ep_group(0, 70);
  EXPECT_EQ(ep.front(), 64);
  EXPECT_EQ(ep.back(), 127);
}

TEST(Plan, RefusesImpossiblePlans) {
  auto model = load_model("deepseek-v3");
  auto cluster = load_cluster("deepseek-h800");
  auto refused = [&](Plan p) {
    try {
      resolve(p, model, cluster);
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  auto p = deepseek_plan("1f1b");
  p.ep = 48;
  EXPECT_NE(refused(p).find("ep 48 must divide dp 128"), std::string::npos);
  p = deepseek_plan("1f1b");
  p.global_batch = 1000;
  EXPECT_NE(refused(p).find("global batch 1000 != dp 128 x microbatches 40"), std::string::npos);
  p = deepseek_plan("1f1b");
  p.layers_per_stage = {4, 4};
  EXPECT_NE(refused(p).find("layers-per-stage lists 2 stages"), std::string::npos);
  p = deepseek_plan("1f1b");
  p.dp = 4096;
  EXPECT_NE(refused(p).find("GPUs, but deepseek-h800 has 2048"), std::string::npos);
  p = deepseek_plan("1f1b");
  p.tp = 3;
  EXPECT_NE(refused(p).find("tp 3"), std::string::npos);
}

TEST(Step, EveryParameterHeldOncePerReplicaTwiceUnderDualPipe) {
  auto model = load_model("llama3-70b");
  Topology topology(load_cluster("dgx-h100"));
  Shape shape;
  double total = model_totals(model, shape).params;
  for (auto [schedule, copies] : {std::pair{"1f1b", 1.0}, {"zb-v", 1.0}, {"dualpipe", 2.0}}) {
    Plan p;
    p.schedule = schedule;
    p.pp = 8;
    p.microbatches = 16;
    auto r = simulate_step(model, topology, p);
    double held = 0, sharded = 0;
    for (auto& m : r.memory) {
      held += m.params / 2;        // BF16 weights
      EXPECT_DOUBLE_EQ(m.grads, 2 * m.params);  // FP32 gradients
      sharded += m.optimizer / 12;  // FP32 master and Adam moments, ZeRO-1 shard
    }
    EXPECT_NEAR(held / total, copies, 1e-9) << schedule;
    EXPECT_NEAR(sharded * r.plan.plan.dp / total, copies, 1e-9) << schedule;
    EXPECT_GE(r.step_ns, r.pipeline_ns);
    EXPECT_NEAR(r.tokens_per_s, 1.0 * r.plan.plan.global_batch * r.plan.plan.seq / (r.step_ns / 1e9), 1e-6 * r.tokens_per_s);
    EXPECT_GT(r.mfu_full, r.mfu_causal);  // full attention counts more FLOPs for the same time
    EXPECT_GT(r.mfu_causal, 0.05);
    EXPECT_LT(r.mfu_full, 1.0);
  }
}

TEST(Step, OverlappedPairHidesExpertCommunication) {
  auto model = load_model("deepseek-v3");
  Topology topology(load_cluster("deepseek-h800"));
  auto dual = simulate_step(model, topology, deepseek_plan("dualpipe"));
  auto plain = simulate_step(model, topology, deepseek_plan("1f1b"));
  EXPECT_GT(dual.compute_comm_ratio, 0.3);
  EXPECT_LT(dual.compute_comm_ratio, 5.0);
  // 1F1B pays every all-to-all in line; DualPipe hides what its pairs' compute covers.
  EXPECT_LT(dual.exposed_ep_ns, plain.exposed_ep_ns * 0.75);
  EXPECT_LT(dual.step_ns, plain.step_ns);
  bool ep_stream = false;
  for (auto& span : dual.timeline.spans) ep_stream = ep_stream || span.stream == Stream::EP;
  EXPECT_TRUE(ep_stream);
}

// DeepSeek-V3 trained with PP16 DualPipe, EP64, ZeRO-1 over DP128, 120 micro-batches of one 4096-token
// sequence, FP8, selective recomputation, on 80 GB H800s (report §3.2-§3.3, docs/cost-model.md §5): the
// plan must fit, and it takes BF16 Adam moments and FP8 SwiGLU caching to fit (§3, §8).
TEST(Step, DeepSeekProductionPlanFits) {
  auto model = load_model("deepseek-v3");
  Topology topology(load_cluster("deepseek-h800"));
  auto plan = deepseek_plan("dualpipe");
  plan.microbatches = 120;
  plan.selective_recompute = true;
  auto report = simulate_step(model, topology, plan);
  EXPECT_TRUE(report.fits);
  double peak = 0;
  for (auto& m : report.memory) peak = std::max(peak, m.total());
  EXPECT_LT(peak, 80.0 * (1 << 30));
  plan.adam_moment_bytes = 4;  // FP32 moments: more optimizer memory on every rank
  auto fp32 = simulate_step(model, topology, plan);
  EXPECT_GT(fp32.memory[2].optimizer, report.memory[2].optimizer * 1.4);
}

// A straggler slows every GPU of its EP group on ranks with expert layers (each all-to-all waits for it), and
// no GPU outside the group.
TEST(Step, StragglerSlowsItsExpertGroup) {
  auto model = load_model("deepseek-v3");
  Topology topology(load_cluster("deepseek-h800"));
  auto rp = resolve(deepseek_plan("1f1b"), model, topology.spec());
  std::vector<double> slowdown(static_cast<std::size_t>(rp.gpus), 1.0);
  slowdown[static_cast<std::size_t>(rp.gpu(3, 0))] = 2.0;  // pipeline rank 3 of replica 0
  auto same = model_costs(model, topology, rp, 1, slowdown);   // replica 1 shares replica 0's EP group
  auto other = model_costs(model, topology, rp, 64, slowdown); // replica 64 is in the next group
  EXPECT_DOUBLE_EQ(same.spec.rank_slowdown[3], 2.0);
  EXPECT_DOUBLE_EQ(same.spec.rank_slowdown[2], 1.0);
  EXPECT_DOUBLE_EQ(other.spec.rank_slowdown[3], 1.0);
}

TEST(Step, FullRunMatchesRepresentativeAndSeesStragglers) {
  auto model = load_model("llama3-70b");
  Topology topology(load_cluster("dgx-h100"));
  Plan p;
  p.schedule = "zb-h1";
  p.pp = 8;
  p.dp = 16;
  p.microbatches = 16;
  auto one = simulate_step(model, topology, p);
  p.full = true;
  auto all = simulate_step(model, topology, p);
  EXPECT_EQ(all.simulated_replicas, 16);
  EXPECT_EQ(all.step_ns, one.step_ns);  // the plan is symmetric
  std::vector<double> slow(static_cast<std::size_t>(topology.spec().total_gpus()), 1.0);
  slow[static_cast<std::size_t>(all.plan.gpu(3, 9))] = 1.5;
  auto straggler = simulate_step(model, topology, p, slow);
  EXPECT_GT(straggler.step_ns, one.step_ns);
}

void expect_same_costs(const ModelCosts& a, const ModelCosts& b, const std::string& what) {
  ASSERT_EQ(a.spec.stages.size(), b.spec.stages.size()) << what;
  for (std::size_t s = 0; s < a.spec.stages.size(); ++s) {
    auto &x = a.spec.stages[s], &y = b.spec.stages[s];
    EXPECT_EQ(x.F_ns, y.F_ns) << what << " stage " << s;
    EXPECT_EQ(x.I_ns, y.I_ns) << what << " stage " << s;
    EXPECT_EQ(x.W_ns, y.W_ns) << what << " stage " << s;
    EXPECT_EQ(x.FB_ns, y.FB_ns) << what << " stage " << s;
    EXPECT_EQ(x.activation_bytes, y.activation_bytes) << what << " stage " << s;
    EXPECT_EQ(x.activation_memory, y.activation_memory) << what << " stage " << s;
    EXPECT_EQ(a.stages[s].ep_ns.sum(), b.stages[s].ep_ns.sum()) << what << " stage " << s;
    EXPECT_EQ(a.stages[s].pair_exposed_ns, b.stages[s].pair_exposed_ns) << what << " stage " << s;
  }
  EXPECT_EQ(a.spec.rank_slowdown, b.spec.rank_slowdown) << what;
  ASSERT_EQ(a.spec.rank_links.size(), b.spec.rank_links.size()) << what;
  for (std::size_t l = 0; l < a.spec.rank_links.size(); ++l) {
    EXPECT_EQ(a.spec.rank_links[l].latency_ns, b.spec.rank_links[l].latency_ns) << what << " link " << l;
    EXPECT_EQ(a.spec.rank_links[l].bandwidth_bytes_per_ns, b.spec.rank_links[l].bandwidth_bytes_per_ns) << what;
  }
}

// --full prices one replica per class of replicas that answer the cluster's questions alike
// (sim/replica_view.hpp). Checked on every replica of the 2048-GPU DeepSeek-V3 plan with stragglers: a
// replica that answers like an earlier one has exactly the costs model_costs() gives it on its own, and
// the stragglers' replicas (and their EP groups') form classes of their own.
TEST(Step, ReplicasThatAnswerAlikeCostAlike) {
  auto model = load_model("deepseek-v3");
  Topology topology(load_cluster("deepseek-h800"));
  auto rp = resolve(deepseek_plan("dualpipe"), model, topology.spec());
  std::vector<double> slowdown(static_cast<std::size_t>(rp.gpus), 1.0);
  slowdown[static_cast<std::size_t>(rp.gpu(3, 70))] = 1.5;
  slowdown[static_cast<std::size_t>(rp.gpu(12, 5))] = 1.2;
  std::vector<std::unique_ptr<ReplicaView>> classes;
  std::vector<ModelCosts> class_costs;
  for (int d = 0; d < rp.plan.dp; ++d) {
    auto view = std::make_unique<ReplicaView>(topology, model, rp, d, slowdown);
    auto alone = model_costs(model, topology, rp, d, slowdown);  // a fresh view: nothing shared
    std::size_t c = 0;
    while (c < classes.size() && !classes[c]->answers_like_me(*view)) ++c;
    if (c < classes.size()) {
      expect_same_costs(class_costs[c], alone, "replica " + std::to_string(d) + " in class " + std::to_string(c));
      continue;
    }
    class_costs.push_back(model_costs(model, *view));
    expect_same_costs(class_costs.back(), alone, "replica " + std::to_string(d));
    classes.push_back(std::move(view));
  }
  // Replicas 5 and 70 hold a straggler; so does every replica sharing their EP groups (ep 64: d mod 64 is the
  // member, d / 64 the group), on the ranks with expert layers.
  EXPECT_GE(classes.size(), 3u);
  EXPECT_LT(classes.size(), 10u);
  EXPECT_EQ(rp.plan.dp, 128);
}

}  // namespace
}  // namespace pipesim
