// A whole training step: the pipeline (engine, per data-parallel replica), then on each GPU the ZeRO-1
// gradient reduce-scatter, the optimizer step on its shard and the parameter all-gather; a GPU starts its
// data-parallel work as soon as its own pipeline work ends, so it overlaps other ranks' pipeline tails.
// Reports what users ask: step time, tokens/s, MFU (causal and full-attention conventions), memory per
// GPU by kind against capacity, the compute:communication ratio and exposed communication by kind.
#pragma once

#include <string>
#include <vector>

#include "models/model.hpp"
#include "sim/model_costs.hpp"
#include "sim/plan.hpp"
#include "topologies/topology.hpp"
#include "traces/metrics.hpp"
#include "traces/timeline.hpp"

namespace pipesim {

struct GpuMemory {
  double params = 0, grads = 0, optimizer = 0, activations = 0;  // bytes
  double total() const { return params + grads + optimizer + activations; }
};

struct StepReport {
  ResolvedPlan plan;
  std::string model, cluster;
  int simulated_replicas = 1;          // 1: one representative per stage (symmetric plan)
  std::int64_t step_ns = 0;
  std::int64_t pipeline_ns = 0;        // the slowest replica's pipeline makespan
  double tokens_per_s = 0, tokens_per_day = 0;
  double mfu_causal = 0, mfu_full = 0;  // pipesim's count with causal and with full attention
  double mfu = 0;                       // in the plan's FLOPs convention
  double flops_per_token = 0;           // training FLOPs per token in the plan's convention
  double bubble_rate = 0;
  double compute_comm_ratio = 0;       // EP: compute over all-to-all time on stages with expert layers (F+I+W : F+I)
  // Communication the compute stream waited for: EP and PP the most on any rank, DP on the rank that ends last.
  std::int64_t exposed_ep_ns = 0, exposed_pp_ns = 0, exposed_dp_ns = 0;
  std::vector<GpuMemory> memory;       // [pp rank]
  double capacity_bytes = 0;
  bool fits = true;
  Metrics metrics;                     // of the reported replica's pipeline
  Timeline timeline;                   // the reported replica, with EP and DP streams
};

// What a caller needs of the step: the report with its timeline (EP and DP streams included), or only the
// figures (a sweep's point: the timeline stays empty, the pipeline is played by the metrics pass, and the
// numbers are the same; with --overlap-grad-reduce, whose buckets read the timeline, it is built anyway).
enum class StepDetail { Timeline, Figures };

// `gpu_slowdown`: per GPU compute slowdown (stragglers), empty for none; needs plan.full to matter.
// The walk: resolve the plan -> generate the schedule once -> per replica: costs -> engine -> DP tail ->
// memory; then the EP overlay and throughput of the slowest replica. Each step below is testable alone.
StepReport simulate_step(const ModelSpec& model, const Topology& topology, const Plan& plan,
                         const std::vector<double>& gpu_slowdown = {}, StepDetail detail = StepDetail::Timeline);

// The plan's schedule, generated once, validated and lowered; and the same before lowering.
Schedule plan_schedule(const ResolvedPlan& plan);
Schedule plan_compute_schedule(const ResolvedPlan& plan);

// One GPU's data-parallel work after its pipeline work: ZeRO-1 gradient reduce-scatter, the optimizer step
// on its shard, the parameter all-gather (docs/cost-model.md §8).
struct DataParallelTail {
  std::int64_t reduce_scatter_ns = 0, optimizer_ns = 0, all_gather_ns = 0;
  std::int64_t total_ns() const { return reduce_scatter_ns + optimizer_ns + all_gather_ns; }
};
// HBM bytes the Adam step moves per parameter of its shard: reads the FP32 gradient, the FP32 master weight
// and both moments, writes the master, the moments and the BF16 weight (the cast): 14 + 4 x moment bytes.
inline double optimizer_bytes_per_param(int moment_bytes) { return 14.0 + 4.0 * moment_bytes; }
DataParallelTail dp_tail(const Topology& topology, const ResolvedPlan& plan, const std::vector<StageWork>& work,
                         int pp_rank, int dp_rank);

// With --overlap-grad-reduce (Megatron-LM's distributed optimizer overlaps the gradient reduce-scatter with
// the backward, bucket by bucket): one bucket per layer of each stage on `pp_rank`, an equal share of the
// stage's parameters, ready as the stage's last weight-gradient action of `timeline` reaches it; sorted by
// readiness. The DP stream runs them in order, then the optimizer and the all-gather (docs/cost-model.md §8).
struct GradientBucket {
  std::int64_t ready_ns = 0, duration_ns = 0;
};
std::vector<GradientBucket> gradient_buckets(const Topology& topology, const ResolvedPlan& plan,
                                             const std::vector<StageWork>& work, const Timeline& timeline,
                                             int pp_rank, int dp_rank);

// Memory of the GPU at `pp_rank`: parameters, gradients and optimizer shard from the stages it holds,
// activations from the simulated peak.
GpuMemory gpu_memory(const ResolvedPlan& plan, const std::vector<StageWork>& work, int pp_rank,
                     double peak_activation_bytes);

// Adds each action's expert all-to-all to the timeline on the EP stream (in line at the end of a plain
// F or I; inside an overlapped pair from its start) and returns, per rank, the EP time the compute
// stream did not hide.
std::vector<std::int64_t> overlay_ep(Timeline& timeline, const std::vector<StageWork>& work);
// The same per-rank exposed EP time from the schedule alone: it depends on which actions each rank runs,
// not on when.
std::vector<std::int64_t> exposed_ep(const Schedule& schedule, const std::vector<StageWork>& work);

// Tokens per second and per day, and MFU in the plan's FLOPs convention and in both attention conventions,
// from the step time.
void add_throughput(StepReport& report, const ModelSpec& model, const GpuSpec& gpu);

}  // namespace pipesim
