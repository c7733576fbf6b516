// The phase model: the overlapped pair against a timeline worked by hand, and the done criterion of
// trace calibration: DeepSeek's H800 trace -> a hardware profile -> every phase of the traced pair within
// 10 % and the pair within 5 % (docs/validation.md §6).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/error.hpp"
#include "models/model.hpp"
#include "sim/model_costs.hpp"
#include "sim/op_time.hpp"
#include "sim/profile_fit.hpp"
#include "sim/step.hpp"
#include "topologies/cluster.hpp"

namespace pipesim {
namespace {

std::vector<PhaseCost> uniform_phases(double compute_ns, double comm_ns) {
  std::vector<PhaseCost> out;
  for (auto name : {"attn(F)", "mlp(F)", "attn(B)", "mlp(B)", "attn(W)", "mlp(W)"}) {
    PhaseCost p;
    p.name = name;
    p.gemm_ns = compute_ns;
    out.push_back(p);
  }
  for (auto name : {"dispatch(F)", "combine(F)", "dispatch(B)", "combine(B)"}) {
    PhaseCost p;
    p.name = name;
    p.communication = true;
    p.comm_ns = comm_ns;
    out.push_back(p);
  }
  return out;
}

double end_of(const PairPrediction& pair, const std::string& name) {
  for (auto& p : pair.phases)
    if (p.name == name) return p.end_ns;
  return -1;
}

TEST(Phases, PairWithoutSlowdownByHand) {
  // Compute 10 each, all-to-alls 5 each. combine(B) 0-5 beside attn(F) 0-10; dispatch(F) 10-15; mlp(B)
  // 10-20; dispatch(B) 20-25; mlp(W) 20-30; mlp(F) 30-40; combine(F) 40-45; attn(B) 40-50; attn(W) 50-60.
  auto pair = predict_pair(uniform_phases(10, 5), 1, 1.0);
  EXPECT_DOUBLE_EQ(pair.makespan_ns, 60);
  EXPECT_DOUBLE_EQ(end_of(pair, "dispatch(F)"), 15);
  EXPECT_DOUBLE_EQ(end_of(pair, "dispatch(B)"), 25);
  EXPECT_DOUBLE_EQ(end_of(pair, "combine(F)"), 45);
  EXPECT_DOUBLE_EQ(pair.compute_stall_ns, 0);
}

TEST(Phases, PairWithSlowdownByHand) {
  // Compute at half speed while an all-to-all runs: attn(F) does 2.5 by 5, ends 12.5; mlp(B) 12.5-25
  // beside dispatch(F) 12.5-17.5; mlp(W) 25-37.5 beside dispatch(B) 25-30; mlp(F) 37.5-47.5 alone;
  // attn(B) 47.5-60 beside combine(F) 47.5-52.5; attn(W) 60-70.
  auto pair = predict_pair(uniform_phases(10, 5), 1, 2.0);
  EXPECT_DOUBLE_EQ(end_of(pair, "attn(F)"), 12.5);
  EXPECT_DOUBLE_EQ(end_of(pair, "mlp(B)"), 25);
  EXPECT_DOUBLE_EQ(end_of(pair, "mlp(W)"), 37.5);
  EXPECT_DOUBLE_EQ(end_of(pair, "combine(F)"), 52.5);
  EXPECT_DOUBLE_EQ(pair.makespan_ns, 70);
}

TEST(Phases, ChunksOfDifferentDepthByHand) {
  // The forward chunk has two layers, the backward chunk one: its second layer's phases cost nothing.
  // Layer 0 as in PairWithoutSlowdownByHand (attn(W) ends at 60, combine(F) at 45); combine(B)1 at 50
  // (after attn(B)0); attn(F)1 60-70; dispatch(F)1 70-75 while compute waits (stall 5); mlp(F)1 75-85;
  // combine(F)1 85-90.
  auto layer = uniform_phases(10, 5);
  auto pair = predict_pair({layer, layer}, {layer}, 1.0);
  EXPECT_DOUBLE_EQ(pair.makespan_ns, 90);
  EXPECT_DOUBLE_EQ(pair.compute_stall_ns, 5);
  double mlp_f1 = -1;
  for (auto& p : pair.phases)
    if (p.name == "mlp(F)" && p.layer == 1) mlp_f1 = p.end_ns;
  EXPECT_DOUBLE_EQ(mlp_f1, 85);
}

TEST(Phases, CommunicationBoundPairStalls) {
  // All-to-alls of 50 against compute of 10: the compute stream waits for each.
  auto pair = predict_pair(uniform_phases(10, 50), 2, 1.0);
  EXPECT_GT(pair.compute_stall_ns, 0);
  EXPECT_GE(pair.makespan_ns, 8 * 50);
  EXPECT_THROW(predict_pair(uniform_phases(10, 5), 0, 1.0), Error);
  EXPECT_THROW(predict_pair(uniform_phases(10, 5), 1, 0.5), Error);
}

TEST(Phases, DeepSeekTraceCalibratesAProfileThatPredictsItsPair) {
  if (!std::filesystem::exists(PIPESIM_DEEPSEEK_TRACE)) GTEST_SKIP() << "no DeepSeek trace at " << PIPESIM_DEEPSEEK_TRACE;
  auto run = import_traces({read_kineto(PIPESIM_DEEPSEEK_TRACE)}, ImportOptions{});
  auto model = load_model("deepseek-v3");
  auto cluster = load_cluster("deepseek-h800");
  Plan plan;
  plan.ep = 64;
  plan.seq = model.seq;
  plan.precision = Precision::FP8;
  plan.selective_recompute = true;
  auto no_fallback = [](const char*, double) { return 0.0; };
  auto fit = fit_profile(run, moe_layer_phases(model, plan, cluster.profile, no_fallback), cluster.profile, true,
                         cluster.gpu.hbm_GBps, "train.json");
  // Kernel-level residuals are reported for every fitted figure; none is wild.
  ASSERT_FALSE(fit.rows.empty());
  for (auto& row : fit.rows) EXPECT_LT(std::abs(row.residual()), 0.35) << row.figure << " " << row.phase;
  EXPECT_LE(fit.profile.memory_GBps.value, cluster.gpu.hbm_GBps);
  EXPECT_GT(fit.profile.comm_compute_slowdown.value, 1.0);
  auto check = check_pair(moe_layer_phases(model, plan, fit.profile, no_fallback), 4,
                          fit.profile.comm_compute_slowdown.value, &run);
  for (auto& p : check.phases) {
    ASSERT_FALSE(std::isnan(p.measured_ns)) << p.name;
    EXPECT_LT(std::abs(p.predicted_ns - p.measured_ns) / p.measured_ns, 0.10) << p.name;
  }
  EXPECT_LT(std::abs(check.pair.makespan_ns - check.measured_pair_ns) / check.measured_pair_ns, 0.05);
}

// A chunk the engine runs alone costs what its phases sum to: stage_work() and layer_phases() price the same
// operators and all-to-alls, so the F-only, B, I and W chunk times of `pipesim validate` are the engine's.
// A stage of four DeepSeek-V3 MoE layers, PP16 EP64 on its cluster, at the H800 profile.
TEST(Phases, StageCostsAreTheSumsOfTheirPhases) {
  auto model = load_model("deepseek-v3");
  Topology topology(load_cluster("deepseek-h800"));
  Plan plan;
  plan.schedule = "dualpipe";
  plan.pp = 16;
  plan.ep = 64;
  plan.microbatches = 32;
  plan.precision = Precision::FP8;
  plan.selective_recompute = true;
  auto rp = resolve(plan, model, topology.spec());
  rp.stage_layers[1] = {5, 6, 7, 8};  // layers 4-7 of the model (index 0 is the embedding): MoE
  auto work = stage_work(model, topology, rp, 0);
  auto& w = work[1];
  auto layers = model_layers(model, plan_shape(rp));
  ASSERT_EQ(layers[5].kind, LayerKind::Moe);
  auto phases = layer_phases(layers[5], plan_shape(rp), topology.spec().profile, true,
                             topology_all_to_all(topology, model, rp.ep_group(rp.stage_to_rank[1], 0)));
  auto sum = [&](std::initializer_list<const char*> names) {
    double t = 0;
    for (auto name : names)
      for (auto& p : phases)
        if (p.name == name) t += p.time_ns();
    return t;
  };
  EXPECT_NEAR(static_cast<double>(w.compute_ns[PassKind::F]), 4 * sum({"attn(F)", "mlp(F)"}), 1.0);
  EXPECT_NEAR(static_cast<double>(w.compute_ns[PassKind::I]), 4 * sum({"attn(B)", "mlp(B)"}), 1.0);
  EXPECT_NEAR(static_cast<double>(w.compute_ns[PassKind::W]), 4 * sum({"attn(W)", "mlp(W)"}), 1.0);
  // Each all-to-all is rounded up to a whole ns on its own in the stage costs.
  EXPECT_NEAR(static_cast<double>(w.ep_ns[PassKind::F]), 4 * sum({"dispatch(F)", "combine(F)"}), 8.0);
  EXPECT_NEAR(static_cast<double>(w.ep_ns[PassKind::I]), 4 * sum({"dispatch(B)", "combine(B)"}), 8.0);
  EXPECT_GT(w.ep_ns[PassKind::F], 0);
}

}  // namespace
}  // namespace pipesim
