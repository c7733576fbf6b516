// What each action costs: compute durations per stage (uneven first/last stages allowed), per-rank
// slowdown (a straggler), activation memory, and the point-to-point link model. A plain table, filled
// from the command line (uniform), from a JSON cost file, or (later) from a model on a cluster; the
// engine reads only this. Validated once, where it is built.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "schedules/action.hpp"

namespace pipesim {

struct StageCost {
  std::int64_t F_ns = 1'000'000;  // forward of one micro-batch, e.g. 1.2ms
  std::int64_t I_ns = 1'000'000;  // backward for input
  std::int64_t W_ns = 500'000;    // backward for weights
  std::int64_t B_ns = -1;         // full backward; -1: I + W
  std::int64_t FB_ns = -1;        // an overlapped pair whose forward half is this stage; -1: F + B of the halves
  std::int64_t activation_bytes = 0;   // sent to the neighbouring stage per micro-batch (activation, or its gradient)
  std::int64_t activation_memory = 0;  // bytes the stage holds from F until its backward ends, per micro-batch
  std::int64_t activation_memory_w = -1;  // of those, bytes still held from I until W; -1: w_memory_fraction
};

struct LinkCost {
  std::int64_t latency_ns = 0;          // e.g. 20us
  double bandwidth_bytes_per_ns = 0;    // 0: unlimited; 50 GB/s = 50 bytes/ns
};

struct Costs {
  std::vector<StageCost> stages;     // [stage]
  std::vector<LinkCost> rank_links;  // [src * ranks + dst] from a topology; empty: `p2p` between every pair
  std::vector<double> rank_slowdown; // [rank]; compute on the rank takes this many times longer (>= 1 for a straggler)
  LinkCost p2p;
  // Of a forward's activations, the share the weight backward still needs after the input backward
  // (ZeroBubble's M_W / M_B); 32sbh / sb(34h+5as) is ~0.25 for the paper's GPT models at s = 1024.
  double w_memory_fraction = 0.25;

  std::int64_t compute_ns(const Action& action, int rank) const;
  std::int64_t backward_ns(int stage) const;
  std::int64_t transfer_ns(std::int64_t bytes) const;  // latency + bytes / bandwidth, over `p2p`
  const LinkCost& link(int src_rank, int dst_rank) const;
  std::int64_t transfer_ns(int src_rank, int dst_rank, std::int64_t bytes) const;
};

// Uniform costs for a schedule's stages and ranks from `--cost F=1.2ms,I=1.3ms,W=0.7ms[,B=..][,FB=..]`.
Costs uniform_costs(std::string_view cost_spec, int stages, int ranks);

// Applies a JSON cost file (see docs in the CLI help) over `costs`: {"default": {...}, "stages": {"0":
// {...}}, "ranks": {"3": {"slowdown": 1.3}}, "p2p": {"latency": "20us", "bandwidth": "50GB/s"},
// "w_memory_fraction": 0.25}. Errors name the JSON path and the value.
void apply_cost_file(Costs& costs, const nlohmann::json& file, std::string_view source);

struct Calibration;
// Costs measured by a run (traces/calibration.hpp): per-stage durations, the microbenchmarked link, and
// F&B pairs at their measured time.
Costs calibrated_costs(const Calibration& calibration, int ranks);

// Refuses impossible costs (negative or zero durations, slowdown <= 0, wrong table sizes).
void validate_costs(const Costs& costs, int stages, int ranks);

}  // namespace pipesim
