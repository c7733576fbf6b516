// From a model on a cluster under a plan to the engine's cost table. Each operator of each layer takes
// max(FLOPs / (peak x GEMM efficiency), bytes / (HBM bandwidth x efficiency)) on the GPU; MoE layers add
// their expert all-to-all (dispatch FP8, combine BF16; backward both in BF16) over the topology or at the
// hardware profile's measured rates, in line for plain chunks. An overlapped F&B pair (DualPipe) is played
// as DeepSeek runs it: the two chunks' layers phase by phase on a compute and a communication stream, the
// compute slowed while communication holds SMs, waiting where its input has not arrived
// (docs/cost-model.md §7, docs/hardware-profiles.md §4). Pipeline hand-offs cross the topology.
#pragma once

#include <vector>

#include "models/accounting.hpp"
#include "schedules/schedule.hpp"
#include "sim/costs.hpp"
#include "sim/plan.hpp"
#include "sim/replica_view.hpp"
#include "topologies/topology.hpp"

namespace pipesim {

// Per stage, per micro-batch, on one GPU: what the costs were built from.
struct StageWork {
  PerPass<std::int64_t> compute_ns; // on all SMs, without EP communication
  PerPass<std::int64_t> ep_ns;      // all-to-all in F (dispatch + combine) and in I (their gradients); W has none
  PerPass<std::int64_t> tp_ns;      // tensor-parallel all-reduces (or reduce-scatter + all-gather), in line
  std::int64_t pair_exposed_ns = 0; // in a pair with this stage's forward: the compute stream waiting on communication
  PerPass<double> flops;            // recomputation included in I
  double params = 0;                // this GPU's share of the stage's weights
  double expert_params = 0;         // of which routed experts (reduced over dp / ep GPUs)
  double activation_bytes = 0;      // kept from F until I
  double activation_w_bytes = 0;    // kept from I until W
};

struct ModelCosts {
  CostSpec spec;                    // for resolve_costs(), then the engine
  std::vector<StageWork> stages;    // [stage]
};

// The accounting's view of a plan: micro-batch, sequence, tp, ep, recomputation, FP8 inputs.
Shape plan_shape(const ResolvedPlan& plan);
Shape plan_shape(const Plan& plan);  // plan.seq already resolved (not 0)

// What the GPUs of the pipeline replica `dp_rank` (gpu(pp_rank, dp_rank)) do per stage; the same for
// every replica except for their EP groups and links.
std::vector<StageWork> stage_work(const ModelSpec& model, const Topology& topology, const ResolvedPlan& plan,
                                  int dp_rank);
// The same, asking the cluster through `view` (the replica's topology answers, logged).
std::vector<StageWork> stage_work(const ModelSpec& model, ReplicaView& view);

// Costs for the pipeline replica `dp_rank`; `gpu_slowdown` per GPU (empty: 1).
ModelCosts model_costs(const ModelSpec& model, const Topology& topology, const ResolvedPlan& plan, int dp_rank,
                       const std::vector<double>& gpu_slowdown = {});
ModelCosts model_costs(const ModelSpec& model, ReplicaView& view);

}  // namespace pipesim
