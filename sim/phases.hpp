// One transformer layer's passes as the phases DeepSeek's DualPipe code annotates (attn(F), mlp(B),
// dispatch(F), ...), priced with a hardware profile, and the overlapped forward&backward chunk pair
// played as those phases on a compute and a communication stream with their dependencies: compute runs
// slower while communication kernels hold SMs, and waits where its input has not arrived, so stalls
// appear as on the GPU (docs/hardware-profiles.md §4).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/accounting.hpp"
#include "sim/op_time.hpp"
#include "sim/plan.hpp"
#include "topologies/hw_profile.hpp"

namespace pipesim {

struct PhaseCost {
  std::string name;             // "attn(F)", "mlp(W)", "dispatch(B)", ...
  bool communication = false;
  // What the model counts in the phase.
  std::vector<std::pair<double, double>> gemms;  // (FLOPs, smallest dimension) per GEMM
  double attention_flops = 0;
  double memory_bytes = 0;      // memory-bound operators
  double memory_kernels = 0;
  double kernels = 0;
  double comm_bytes = 0;        // per GPU
  // Its time on an otherwise idle GPU at the profile's rates, in ns.
  double gemm_ns = 0, attention_ns = 0, memory_ns = 0, launch_ns = 0, comm_ns = 0;
  double time_ns() const { return communication ? comm_ns : gemm_ns + attention_ns + memory_ns + launch_ns; }
};

// The phases of a layer (attention block up to the dispatch, expert block, and for MoE layers the four
// all-to-alls). F's phases are (F), I's are (B) as DeepSeek names them, W's (W).
std::vector<PhaseCost> layer_phases(const LayerCost& layer, const Shape& shape, const HwProfile& hw, bool fp8,
                                    const CommTime& fallback);

// The phases of the model's first MoE layer under `plan` (its seq already resolved), at `hw`; throws Error
// naming the model when it has no MoE layer.
std::vector<PhaseCost> moe_layer_phases(const ModelSpec& model, const Plan& plan, const HwProfile& hw,
                                        const CommTime& fallback);

struct PhaseRun {
  std::string name;
  int layer = 0;
  double start_ns = 0, end_ns = 0;
};

struct PairPrediction {
  std::vector<PhaseRun> phases;  // in start order
  double makespan_ns = 0;
  double compute_stall_ns = 0;   // the compute stream idle before its last phase ends
  double slowdown = 1;           // compute time factor while communication runs
};

// A forward chunk overlapped with the backward of another, layer by layer in DeepSeek's order: compute
// attn(F) mlp(B) mlp(W) mlp(F) attn(B) attn(W); communication combine(B) dispatch(F) dispatch(B)
// combine(F); each all-to-all after the compute that produces its input, each compute after the
// all-to-all that feeds it. `forward[i]` and `backward[i]` are the phases of the i-th layer each chunk
// runs (the backward chunk's deepest layer first); a chunk with fewer layers, or a phase a layer lacks
// (a dense layer's all-to-alls), costs nothing there. `slowdown` >= 1.
PairPrediction predict_pair(const std::vector<std::vector<PhaseCost>>& forward,
                            const std::vector<std::vector<PhaseCost>>& backward, double slowdown);
// `layers` identical layers in both chunks.
PairPrediction predict_pair(const std::vector<PhaseCost>& phases, int layers, double slowdown);

}  // namespace pipesim
