// Plays a compute-only schedule once, in an order its data flow allows, checking as it goes what validate()
// checks beyond the shape: each pass in range, on its stage's rank and its micro-batch's route; each pass
// once, and one backward (B or I) per stage and micro-batch; each after the passes it needs on its own rank
// (F after the F before it on the route, I or B after their F and the backward after them, W after its I);
// every rank finishes; every stage of every route ran F and either B or I and W. Each rank runs its program
// until it needs another rank's pass that has not run, and the rank that runs that pass resumes it. A
// visitor sees each action once all it needs has run: validate() passes none (its fast path), the metrics
// pass times the action (sim/metrics_pass.cpp). One walk for both, so they accept the same schedules
// (docs/performance.md §3).
#pragma once

#include <cstdint>
#include <vector>

#include "schedules/schedule.hpp"

namespace pipesim {

class Play {
 public:
  // Per (route, stage, direction): a pass of that stage on a micro-batch of that route takes its input from
  // `from` (the stage before it for an F, after it for a backward; -1 at the route's end), from another rank
  // when `recv`, and hands its output to `send_to` on rank `send_peer` when that is another rank (-1: none).
  // W neither receives nor sends. A stage sits on its own rank (checked), so all of this is fixed per stage.
  struct Hop {
    bool on_route = false;  // the route visits the stage
    bool recv = false;
    int from = -1, send_to = -1, send_peer = -1;
  };

  // `schedule` has passed validate_shape(). A schedule with more (route, stage) pairs than kMaxHops (an
  // imported one with a route per micro-batch over thousands of stages) is not walked: run() answers false
  // at once and the caller takes the check-by-check path, whose tables grow with the routes' lengths
  // instead (this one is per (route, stage), which makes each lookup one load).
  static constexpr std::size_t kMaxHops = std::size_t{1} << 20;
  explicit Play(const Schedule& schedule);

  // Calls on_action(rank, action, hops) for each action (hops[p]: the Hop of the action's pass p), each
  // after every pass it needs. False when the schedule holds a SEND/RECV (lowered: not this walk's to play)
  // or fails a check above; the caller then validates in full for the message.
  template <class OnAction>
  bool run(OnAction&& on_action) {
    if (hops_.empty()) return false;  // too many routes to walk
    while (!ready_.empty()) {
      int r = ready_.back();
      ready_.pop_back();
      if (!advance(r, on_action)) return false;
    }
    for (std::size_t r = 0; r < ranks_.size(); ++r)
      if (ranks_[r].pc < s_.programs[r].size()) return false;
    return complete();
  }

 private:
  struct Rank {
    std::size_t pc = 0;  // next action
    // The other rank's pass it stopped for: stage, micro-batch and the kinds that will do (-1: running).
    int wait_stage = -1, wait_microbatch = 0;
    std::uint8_t wait_kinds = 0;
  };

  template <class OnAction>
  bool advance(int r, OnAction& on_action) {
    auto& rank = ranks_[static_cast<std::size_t>(r)];
    auto& program = s_.programs[static_cast<std::size_t>(r)];
    for (; rank.pc < program.size(); ++rank.pc) {
      auto& action = program[rank.pc];
      if (!action.is_compute()) return false;
      auto passes = action.passes();
      const Hop* hops[2] = {nullptr, nullptr};
      for (std::size_t p = 0; p < passes.size(); ++p) {
        if (!in_place(passes[p], r)) return false;
        hops[p] = &hop_of(passes[p]);
        if (!hops[p]->on_route || !in_order(passes[p], *hops[p])) return false;
      }
      for (std::size_t p = 0; p < passes.size(); ++p) {
        auto& pass = passes[p];
        if (pass.op == Op::W || !hops[p]->recv) continue;
        auto kinds = needed_from(pass);
        if (!(done(hops[p]->from, pass.microbatch) & kinds)) {
          rank.wait_stage = hops[p]->from;
          rank.wait_microbatch = pass.microbatch;
          rank.wait_kinds = kinds;
          return true;
        }
      }
      on_action(r, action, hops);
      for (auto& pass : passes) done(pass.stage, pass.microbatch) |= bit(pass.op);
      for (std::size_t p = 0; p < passes.size(); ++p)
        if (passes[p].op != Op::W && hops[p]->send_to >= 0) wake(hops[p]->send_peer, passes[p]);
    }
    return true;
  }

  static std::uint8_t bit(Op op) { return static_cast<std::uint8_t>(1u << static_cast<unsigned>(op)); }
  // What a pass needs of the stage it takes its input from: an F that stage's F, a backward its backward.
  static std::uint8_t needed_from(const Pass& pass) { return pass.op == Op::F ? bit(Op::F) : bit(Op::I) | bit(Op::B); }
  // validate()'s placement, the route aside: a stage and a micro-batch that exist, the stage on this rank.
  bool in_place(const Pass& pass, int r) const {
    return static_cast<unsigned>(pass.stage) < static_cast<unsigned>(s_.stages) &&
           static_cast<unsigned>(pass.microbatch) < static_cast<unsigned>(s_.microbatches) &&
           s_.stage_to_rank[static_cast<std::size_t>(pass.stage)] == r;
  }
  bool in_order(const Pass& pass, const Hop& hop) {
    auto here = done(pass.stage, pass.microbatch);
    if (here & bit(pass.op)) return false;  // a second time
    if (pass.op == Op::W) return (here & bit(Op::I)) != 0;
    bool forward = pass.op == Op::F;
    // A backward needs its F, and no backward before it (an I beside a B would hand the gradient on twice).
    if (!forward && ((here & needed_from(pass)) || !(here & bit(Op::F)))) return false;
    return hop.recv || hop.from < 0 || (done(hop.from, pass.microbatch) & needed_from(pass));
  }
  // The rank that has just run `pass` resumes `peer` if it stopped for it.
  void wake(int peer, const Pass& pass) {
    auto& w = ranks_[static_cast<std::size_t>(peer)];
    if (w.wait_stage == pass.stage && w.wait_microbatch == pass.microbatch && (w.wait_kinds & bit(pass.op))) {
      w.wait_stage = -1;
      ready_.push_back(peer);
    }
  }
  const Hop& hop_of(const Pass& pass) const {
    auto route = static_cast<std::size_t>(s_.route_of[static_cast<std::size_t>(pass.microbatch)]);
    return hops_[(route * static_cast<std::size_t>(s_.stages) + static_cast<std::size_t>(pass.stage)) * 2 +
                 (pass.op != Op::F)];
  }
  // Micro-batch first: the ranks work on nearby micro-batches, and a pass looks at its neighbour stage's.
  std::uint8_t& done(int stage, int microbatch) {
    return done_[static_cast<std::size_t>(microbatch) * static_cast<std::size_t>(s_.stages) + static_cast<std::size_t>(stage)];
  }
  bool complete();

  const Schedule& s_;
  std::vector<Hop> hops_;           // [route][stage][forward, backward]
  std::vector<std::uint8_t> done_;  // [micro-batch][stage]: bit(op) for each F, I, W, B that has run
  std::vector<Rank> ranks_;
  std::vector<int> ready_;  // ranks to resume
};

}  // namespace pipesim
