// The rules both interpreters of a schedule in simulated time share (the event engine, sim/engine.cpp, and
// the metrics pass, sim/metrics_pass.cpp): time arithmetic that refuses to overflow, the memory each pass
// takes and gives back, and the FIFO point-to-point links. One copy, so the two cannot drift apart.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

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
  PassMemory(const Schedule& s, const Costs& c) {
    changes_.reserve(static_cast<std::size_t>(s.stages));
    for (int st = 0; st < s.stages; ++st) {
      auto& stage = c.stages[static_cast<std::size_t>(st)];
      auto memory = stage.activation_memory;
      auto units = kUnit * s.ranks / s.route_length(st);
      auto i_units = static_cast<std::int64_t>(std::llround((1.0 - c.w_memory_fraction) * static_cast<double>(units)));
      auto i_bytes = memory - std::min(memory, stage.activation_memory_w);
      // Indexed by Op: F, I, W, B.
      changes_.push_back({MemoryChange{units, memory}, {-i_units, -i_bytes}, {i_units - units, i_bytes - memory}, {-units, -memory}});
    }
  }
  // An F pass changes memory when it starts, every other pass when it ends ({0, 0} at the other moment).
  MemoryChange at_start(const Pass& pass) const { return pass.op == Op::F ? change(pass) : MemoryChange{}; }
  MemoryChange at_end(const Pass& pass) const { return pass.op == Op::F ? MemoryChange{} : change(pass); }

 private:
  MemoryChange change(const Pass& pass) const {
    return changes_[static_cast<std::size_t>(pass.stage)][static_cast<std::size_t>(pass.op)];
  }
  std::vector<std::array<MemoryChange, 4>> changes_;  // [stage][F I W B]
};

// The links a rank sends on. Each serves its messages first in, first out: serialisation waits for the
// link, latency overlaps the next message. A rank talks to a handful of peers, so a short list beats a map;
// each link keeps its last message's size and time (a stage sends one size).
class RankLinks {
 public:
  // A message of `bytes` from `rank` to `peer` posted at t: moves that link's free time on, returns the arrival.
  std::int64_t send(const Costs& c, int rank, int peer, std::int64_t t, std::int64_t bytes) {
    auto& l = to(peer);
    if (l.bytes != bytes) {
      l.bytes = bytes;
      l.transfer_ns = c.transfer_ns(rank, peer, bytes);
    }
    auto latency = c.link(rank, peer).latency_ns;
    l.free_ns = later(std::max(t, l.free_ns), l.transfer_ns - latency);
    return later(l.free_ns, latency);
  }

 private:
  struct Link {
    int peer;
    std::int64_t free_ns = 0;
    std::int64_t bytes = -1, transfer_ns = 0;
  };
  Link& to(int peer) {
    for (auto& l : links_)
      if (l.peer == peer) return l;
    return links_.emplace_back(Link{peer});
  }
  std::vector<Link> links_;
};

}  // namespace pipesim::engine
