// What each action costs: compute durations per stage (uneven first/last stages allowed), per-rank
// slowdown (a straggler), activation memory, and the point-to-point link model. A CostSpec is filled from
// the command line (uniform), a JSON cost file, a calibration or a model on a cluster; resolve_costs()
// validates it once and derives what was left unset, giving the Costs that are all the engine reads.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "schedules/schedule.hpp"

namespace pipesim {

class JsonReader;

// What a user, a cost file, a calibration or the model says about one stage; resolve_costs() derives
// what is left unset.
struct StageCostSpec {
  std::int64_t F_ns = 1'000'000;  // forward of one micro-batch, e.g. 1.2ms
  std::int64_t I_ns = 1'000'000;  // backward for input
  std::int64_t W_ns = 500'000;    // backward for weights
  std::optional<std::int64_t> B_ns;   // full backward; unset: I + W
  std::optional<std::int64_t> FB_ns;  // an overlapped pair, forward half here (see StageCost); unset: F + B of the halves
  std::int64_t activation_bytes = 0;   // sent to the neighbouring stage per micro-batch (activation, or its gradient)
  std::int64_t activation_memory = 0;  // bytes the stage holds from F until its backward ends, per micro-batch
  std::optional<std::int64_t> activation_memory_w;  // of those, bytes still held from I until W; unset: w_memory_fraction
};

struct LinkCost {
  std::int64_t latency_ns = 0;          // e.g. 20us
  double bandwidth_bytes_per_ns = 0;    // 0: unlimited; 50 GB/s = 50 bytes/ns
};

struct CostSpec {
  std::vector<StageCostSpec> stages;  // [stage]
  std::vector<LinkCost> rank_links;   // [src * ranks + dst] from a topology; empty: `p2p` between every pair
  std::vector<double> rank_slowdown;  // [rank]; compute on the rank takes this many times longer (>= 1 for a straggler)
  LinkCost p2p;
  // Of a forward's activations, the share the weight backward still needs after the input backward
  // (ZeroBubble's M_W / M_B); 32sbh / sb(34h+5as) is ~0.25 for the paper's GPT models at s = 1024
  // (docs/cost-model.md).
  double w_memory_fraction = 0.25;
};

// One stage's costs with everything derived: what the engine reads.
struct StageCost {
  std::int64_t F_ns = 0, I_ns = 0, W_ns = 0, B_ns = 0;
  // The overlapped pair of this stage's forward with a full backward of `pair_partner`, the other stage on
  // its rank (DualPipe and V placements hold two); a stage alone on its rank is its own partner, and on a
  // rank with more than two stages there is none (-1). Any other pair costs F + its backward.
  std::int64_t FB_ns = 0;
  int pair_partner = -1;
  std::int64_t activation_bytes = 0, activation_memory = 0, activation_memory_w = 0;
};

struct Costs {
  std::vector<StageCost> stages;     // [stage]
  std::vector<LinkCost> rank_links;  // as in CostSpec
  std::vector<double> rank_slowdown; // [rank]
  LinkCost p2p;
  double w_memory_fraction = 0.25;

  // Inline: both interpreters ask once per action.
  std::int64_t compute_ns(const Action& action, int rank) const {
    auto& c = stages[static_cast<std::size_t>(action.stage())];
    std::int64_t base = 0;
    switch (action.op) {
      case Op::F: base = c.F_ns; break;
      case Op::I: base = c.I_ns; break;
      case Op::W: base = c.W_ns; break;
      case Op::B: base = c.B_ns; break;
      case Op::OverlapFB: {
        auto& back = action.pass[1];
        auto& other = stages[static_cast<std::size_t>(back.stage)];
        bool partners = back.op == Op::B && back.stage == c.pair_partner;
        base = partners ? c.FB_ns : c.F_ns + (back.op == Op::B ? other.B_ns : other.I_ns);
        break;
      }
      default: return 0;
    }
    double slowdown = rank_slowdown[static_cast<std::size_t>(rank)];
    return slowdown == 1.0 ? base : static_cast<std::int64_t>(std::llround(static_cast<double>(base) * slowdown));
  }
  const LinkCost& link(int src_rank, int dst_rank) const {
    if (rank_links.empty()) return p2p;
    return rank_links[static_cast<std::size_t>(src_rank) * rank_slowdown.size() + static_cast<std::size_t>(dst_rank)];
  }
  std::int64_t transfer_ns(int src_rank, int dst_rank, std::int64_t bytes) const;  // latency + bytes / bandwidth
};

// The boundary: refuses impossible costs (table sizes, durations <= 0, slowdowns <= 0, fractions outside
// 0..1), then fills B (I + W), FB (F + B of the partner), the partner and the W-held memory.
Costs resolve_costs(const CostSpec& spec, const Schedule& schedule);

// Uniform costs for a schedule's stages and ranks from `--cost F=1.2ms,I=1.3ms,W=0.7ms[,B=..][,FB=..]`.
CostSpec uniform_costs(std::string_view cost_spec, int stages, int ranks);

// Applies a JSON cost file (see docs in the CLI help) over `costs`: {"default": {...}, "stages": {"0":
// {...}}, "ranks": {"3": {"slowdown": 1.3}}, "p2p": {"latency": "20us", "bandwidth": "50GB/s"},
// "w_memory_fraction": 0.25}. Errors name the JSON path and the value.
void apply_cost_file(CostSpec& costs, const JsonReader& file);

struct Calibration;
// Costs measured by a run (traces/calibration.hpp): per-stage durations, the microbenchmarked link, and
// F&B pairs at their measured time.
CostSpec calibrated_costs(const Calibration& calibration, int ranks);

}  // namespace pipesim
