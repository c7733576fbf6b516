// The rules both interpreters of a schedule in simulated time share (the event engine, sim/engine.cpp, and
// the metrics pass, sim/metrics_pass.cpp): time arithmetic that refuses to overflow, the memory each pass
// takes and gives back, and the FIFO point-to-point link. One copy, so the two cannot drift apart.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/error.hpp"
#include "schedules/schedule.hpp"
#include "sim/costs.hpp"

namespace pipesim::engine {

// Memory is counted in integer units so frees return exactly what was allocated: kUnit per stage's
// activations, divisible by every route length 1..16.
constexpr std::int64_t kUnit = 3'603'600;

// t + d, or an input error once simulated time would leave 64-bit nanoseconds (292 years): each action is
// bounded at the boundary, but enough of them in a row could still get there.
inline std::int64_t later(std::int64_t t, std::int64_t d) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(t, d, &out))
    throw Error("simulation: the timeline runs past 2^63 ns (292 years); the costs are too large for this schedule");
  return out;
}

struct MemoryChange {
  std::int64_t units = 0, bytes = 0;
};

// F takes one stage's worth (and the stage's activation memory) when it starts; I frees the part only it
// needs, W the rest (w_memory_fraction), B all of it, each when it ends. A chunk on a route of n stages
// holds 1/n of the model; units count activations of 1/ranks of it (one 1F1B stage), so schedules that cut
// the model finer compare fairly.
class PassMemory {
 public:
  PassMemory(const Schedule& s, const Costs& c) : s_(s), c_(c) {}
  // An F pass changes memory when it starts, every other pass when it ends ({0, 0} at the other moment).
  MemoryChange at_start(const Pass& pass) const {
    if (pass.op != Op::F) return {};
    return {units_of(pass), c_.stages[static_cast<std::size_t>(pass.stage)].activation_memory};
  }
  MemoryChange at_end(const Pass& pass) const {
    auto& stage = c_.stages[static_cast<std::size_t>(pass.stage)];
    auto memory = stage.activation_memory;
    auto units = units_of(pass);
    auto i_units = static_cast<std::int64_t>(std::llround((1.0 - c_.w_memory_fraction) * static_cast<double>(units)));
    auto i_bytes = memory - std::min(memory, stage.activation_memory_w);
    switch (pass.op) {
      case Op::B: return {-units, -memory};
      case Op::I: return {-i_units, -i_bytes};
      case Op::W: return {i_units - units, i_bytes - memory};
      default: return {};
    }
  }

 private:
  std::int64_t units_of(const Pass& pass) const { return kUnit * s_.ranks / s_.route_length(pass.stage); }
  const Schedule& s_;
  const Costs& c_;
};

// A transfer posted at t on a link that is free from `link_free_ns`: serialisation waits for the link
// (FIFO), latency overlaps the next message. Moves the link's free time on; returns the arrival.
inline std::int64_t send_on_link(std::int64_t& link_free_ns, std::int64_t t, const LinkCost& link,
                                 std::int64_t transfer_ns) {
  auto start = std::max(t, link_free_ns);
  link_free_ns = later(start, transfer_ns - link.latency_ns);
  return later(link_free_ns, link.latency_ns);
}

}  // namespace pipesim::engine
