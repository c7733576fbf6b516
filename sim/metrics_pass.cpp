// The metrics pass (see metrics_pass.hpp).
#include "sim/metrics_pass.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "sim/engine_rules.hpp"

namespace pipesim {
namespace {

class MetricsPass {
 public:
  MetricsPass(const Schedule& s, const Costs& c) : s_(s), c_(c), memory_(s, c), out_(s) {
    streams_ = 2 * s.stages;
    if (static_cast<std::int64_t>(streams_) * s.microbatches > std::numeric_limits<int>::max())
      throw Error(fmt::format("simulation: {} stages x {} micro-batches is too large to simulate", s.stages, s.microbatches));
    // A rank runs ahead of the next by at most a pipeline's depth of micro-batches under most schedules
    // (more under GPipe-like warm-ups, and then the ring grows), and never by more than all of them.
    while ((1 << window_bits_) < std::min(s.microbatches, s.ranks)) ++window_bits_;
    transfers_.resize(static_cast<std::size_t>(streams_) << window_bits_);
    done_.assign(static_cast<std::size_t>(s.stages) * static_cast<std::size_t>(s.microbatches), 0);
    build_hops();
    ranks_.resize(static_cast<std::size_t>(s.ranks));
    for (int r = s.ranks - 1; r >= 0; --r) ready_.push_back(r);
  }

  std::optional<Metrics> run() {
    while (!ready_.empty()) {
      int r = ready_.back();
      ready_.pop_back();
      if (!advance(r)) return std::nullopt;
    }
    if (!complete()) return std::nullopt;
    for (std::size_t r = 0; r < ranks_.size(); ++r) {
      auto& rank = ranks_[r];
      if (rank.pc < s_.programs[r].size()) return std::nullopt;
      out_.add_memory(static_cast<int>(r), static_cast<double>(rank.peak_units) / engine::kUnit,
                      static_cast<double>(rank.peak_bytes));
    }
    return std::move(out_).finish();
  }

 private:
  struct Rank {
    std::size_t pc = 0;  // next action
    std::int64_t t = 0;  // when the compute stream is free
    std::int64_t units = 0, bytes = 0, peak_units = 0, peak_bytes = 0;
    int waiting_for = -1;     // the transfer key it stopped at; only the receiving rank ever waits for a key
    engine::RankLinks links;
  };
  // Per transfer, keyed by (direction, receiving stage, micro-batch). Only posted, not yet received
  // transfers are held: each (direction, stage) stream is a ring of 2^window_bits_ slots indexed by
  // micro-batch, doubled when a post finds its slot taken. A stream holds about a pipeline's depth of
  // transfers at a time and the table stays in cache, where one entry per micro-batch would miss it at every
  // receive.
  struct Transfer {
    std::int64_t arrival_ns = -1, posted_ns = -1;
    int microbatch = -1;  // -1: free
  };
  // Per (route, stage, direction): whether a pass of that stage receives its input from another rank, the
  // stage it sends to on another rank and that rank (-1: none), and the stage on its own rank it takes its
  // input from (-1: none, or another rank's). A forward receives from the stage before it on the
  // micro-batch's route and sends to the one after; a backward the other way round; W neither. A stage sits
  // on its own rank (validated), so all of this is a property of the stage.
  struct Hop {
    bool on_route = false;  // the route visits the stage
    bool recv = false;
    int send_to = -1, send_peer = -1, local_from = -1;
  };
  void build_hops() {
    hops_.resize(s_.routes.size() * static_cast<std::size_t>(s_.stages) * 2);
    for (std::size_t route = 0; route < s_.routes.size(); ++route) {
      auto& path = s_.routes[route];
      for (std::size_t k = 0; k < path.size(); ++k) {
        int stage = path[k];
        int before = k > 0 ? path[k - 1] : -1, after = k + 1 < path.size() ? path[k + 1] : -1;
        for (int backward = 0; backward < 2; ++backward) {
          int from = backward ? after : before, to = backward ? before : after;
          auto& hop = hops_[(route * static_cast<std::size_t>(s_.stages) + static_cast<std::size_t>(stage)) * 2 +
                            static_cast<std::size_t>(backward)];
          hop.on_route = true;
          if (from >= 0 && rank_of(from) != rank_of(stage)) hop.recv = true;
          if (from >= 0 && rank_of(from) == rank_of(stage)) hop.local_from = from;
          if (to >= 0 && rank_of(to) != rank_of(stage)) {
            hop.send_to = to;
            hop.send_peer = rank_of(to);
          }
        }
      }
    }
  }
  const Hop& hop_of(const Pass& pass) const {
    auto route = static_cast<std::size_t>(s_.route_of[static_cast<std::size_t>(pass.microbatch)]);
    return hops_[(route * static_cast<std::size_t>(s_.stages) + static_cast<std::size_t>(pass.stage)) * 2 +
                 (pass.op != Op::F)];
  }
  int rank_of(int stage) const { return s_.stage_to_rank[static_cast<std::size_t>(stage)]; }
  // The transfer stream into `stage` in this pass's direction; with the micro-batch, the transfer's key.
  int stream(const Pass& pass, int stage) const { return (pass.op == Op::F ? 0 : s_.stages) + stage; }
  int key(int stream, int microbatch) const { return stream * s_.microbatches + microbatch; }
  Transfer& slot(int stream, int microbatch) {
    return transfers_[(static_cast<std::size_t>(stream) << window_bits_) |
                      (static_cast<std::size_t>(microbatch) & ((std::size_t{1} << window_bits_) - 1))];
  }
  // The posted transfer, or null.
  Transfer* posted(int stream, int microbatch) {
    auto& t = slot(stream, microbatch);
    return t.microbatch == microbatch ? &t : nullptr;
  }
  void grow() {
    std::vector<Transfer> old(static_cast<std::size_t>(streams_) << ++window_bits_);
    old.swap(transfers_);
    for (std::size_t i = 0; i < old.size(); ++i)
      if (old[i].microbatch >= 0)
        slot(static_cast<int>(i >> (window_bits_ - 1)), old[i].microbatch) = old[i];
  }

  // validate()'s placement, but for the route: the pass names a stage and a micro-batch that exist, and
  // the stage is this rank's.
  bool in_place(const Pass& pass, int r) const {
    return static_cast<unsigned>(pass.stage) < static_cast<unsigned>(s_.stages) &&
           static_cast<unsigned>(pass.microbatch) < static_cast<unsigned>(s_.microbatches) && rank_of(pass.stage) == r;
  }
  // Whether a pass may run now: it has not run before, and its producers on its own rank have (validate()'s
  // rank order; the producers on other ranks are waited for as transfers): an F needs the F it takes its
  // input from when that is on this rank, an I or B its stage's F and the backward it takes its gradient
  // from when on this rank, a W its I.
  bool in_order(const Pass& pass, const Hop& hop) {
    auto here = done(pass.stage, pass.microbatch);
    if (here & bit(pass.op)) return false;  // a second time
    if (pass.op == Op::W) return (here & bit(Op::I)) != 0;
    bool forward = pass.op == Op::F;
    auto backwards = bit(Op::I) | bit(Op::B);
    // A backward needs its F and no backward before it (an I beside a B would send the gradient twice).
    if (!forward && ((here & backwards) || !(here & bit(Op::F)))) return false;
    auto needed = forward ? bit(Op::F) : backwards;
    return hop.local_from < 0 || (done(hop.local_from, pass.microbatch) & needed);
  }
  static std::uint8_t bit(Op op) { return static_cast<std::uint8_t>(1u << static_cast<unsigned>(op)); }
  // After the last action: each stage of each micro-batch's route ran F and either B or I and W.
  bool complete() {
    auto full = bit(Op::F) | bit(Op::B), split = bit(Op::F) | bit(Op::I) | bit(Op::W);
    for (int mb = 0; mb < s_.microbatches; ++mb)
      for (int stage : s_.route(mb))
        if (auto d = done(stage, mb); d != full && d != split) return false;
    return true;
  }
  std::uint8_t& done(int stage, int microbatch) {
    return done_[static_cast<std::size_t>(microbatch) * static_cast<std::size_t>(s_.stages) +
                 static_cast<std::size_t>(stage)];
  }

  // Runs rank r's program until it needs a transfer that has not been posted, or meets a SEND/RECV (a
  // lowered schedule, which is the engine's to play) or a pass before one it needs (false for both).
  bool advance(int r) {
    auto& rank = ranks_[static_cast<std::size_t>(r)];
    auto& program = s_.programs[static_cast<std::size_t>(r)];
    for (; rank.pc < program.size(); ++rank.pc) {
      auto& action = program[rank.pc];
      if (!action.is_compute()) return false;
      auto passes = action.passes();
      const Hop* hops[2];
      for (std::size_t p = 0; p < passes.size(); ++p) {
        if (!in_place(passes[p], r)) return false;
        hops[p] = &hop_of(passes[p]);
        if (!hops[p]->on_route || !in_order(passes[p], *hops[p])) return false;
      }
      for (std::size_t p = 0; p < passes.size(); ++p) {
        if (passes[p].op == Op::W || !hops[p]->recv) continue;
        int recv = stream(passes[p], passes[p].stage);
        if (!posted(recv, passes[p].microbatch)) {
          rank.waiting_for = key(recv, passes[p].microbatch);
          return true;
        }
      }
      // The RECVs lower() puts before the action, in pass order: the compute stream waits only for the part
      // of each transfer after both ends were ready.
      auto t = rank.t;
      for (std::size_t p = 0; p < passes.size(); ++p) {
        if (passes[p].op == Op::W || !hops[p]->recv) continue;
        auto& transfer = *posted(stream(passes[p], passes[p].stage), passes[p].microbatch);
        auto reached = t;
        t = std::max(t, transfer.arrival_ns);
        out_.add_wait(r, std::min(std::max(reached, transfer.posted_ns), t), t);
        transfer.microbatch = -1;
      }
      for (auto& pass : passes) change_memory(rank, memory_.at_start(pass));
      auto end = engine::later(t, c_.compute_ns(action, r));
      out_.add_compute(r, t, end);
      for (auto& pass : passes) change_memory(rank, memory_.at_end(pass));
      rank.t = end;
      for (auto& pass : passes) done(pass.stage, pass.microbatch) |= bit(pass.op);
      // The SENDs after it.
      for (std::size_t p = 0; p < passes.size(); ++p)
        if (passes[p].op != Op::W && hops[p]->send_to >= 0) post(r, rank, passes[p], *hops[p]);
    }
    return true;
  }

  void post(int r, Rank& rank, const Pass& pass, const Hop& hop) {
    int peer = hop.send_peer, send_stream = stream(pass, hop.send_to), send_key = key(send_stream, pass.microbatch);
    auto bytes = c_.stages[static_cast<std::size_t>(pass.stage)].activation_bytes;
    auto arrival = rank.links.send(c_, r, peer, rank.t, bytes);
    // Each key is posted once (in_order(): a pass runs once, and one backward per stage and micro-batch),
    // so a taken slot holds another micro-batch, and a larger ring separates them.
    while (slot(send_stream, pass.microbatch).microbatch >= 0) grow();
    slot(send_stream, pass.microbatch) = {arrival, rank.t, pass.microbatch};
    out_.add_transfer(arrival, bytes);
    auto& receiver = ranks_[static_cast<std::size_t>(peer)];
    if (receiver.waiting_for == send_key) {
      receiver.waiting_for = -1;
      ready_.push_back(peer);
    }
  }

  static void change_memory(Rank& rank, engine::MemoryChange change) {
    rank.units += change.units;
    rank.bytes += change.bytes;
    rank.peak_units = std::max(rank.peak_units, rank.units);
    rank.peak_bytes = std::max(rank.peak_bytes, rank.bytes);
  }

  const Schedule& s_;
  const Costs& c_;
  engine::PassMemory memory_;
  MetricsAccumulator out_;
  std::vector<Rank> ranks_;
  std::vector<Hop> hops_;
  std::vector<std::uint8_t> done_;  // [micro-batch][stage]: bit(op) for each F, I, W, B that has run
  int streams_ = 0, window_bits_ = 0;
  std::vector<Transfer> transfers_;  // [stream][micro-batch mod 2^window_bits_]
  std::vector<int> ready_;  // ranks to resume
};

}  // namespace

std::optional<Metrics> metrics_pass(const Schedule& schedule, const Costs& costs) {
  return MetricsPass(schedule, costs).run();
}

}  // namespace pipesim
