// The metrics pass (see metrics_pass.hpp).
#include "sim/metrics_pass.hpp"

#include <fmt/format.h>

#include "sim/engine_rules.hpp"

namespace pipesim {
namespace {

class MetricsPass {
 public:
  MetricsPass(const Schedule& s, const Costs& c) : s_(s), c_(c), memory_(s, c), out_(s) {
    for (auto& route : s.routes) route_length_ = std::max(route_length_, static_cast<int>(route.size()));
    auto keys = 2 * static_cast<std::int64_t>(route_length_) * s.microbatches;
    if (keys > std::numeric_limits<int>::max())
      throw Error(fmt::format("simulation: {} stages x {} micro-batches is too large to simulate", s.stages, s.microbatches));
    transfers_.resize(static_cast<std::size_t>(keys));
    ranks_.resize(static_cast<std::size_t>(s.ranks));
    for (int r = s.ranks - 1; r >= 0; --r) ready_.push_back(r);
  }

  std::optional<Metrics> run() {
    while (!ready_.empty()) {
      int r = ready_.back();
      ready_.pop_back();
      if (!advance(r)) return std::nullopt;
    }
    for (std::size_t r = 0; r < ranks_.size(); ++r) {
      auto& rank = ranks_[r];
      if (rank.pc < s_.programs[r].size()) return std::nullopt;
      out_.add_memory(static_cast<int>(r), static_cast<double>(rank.peak_units) / engine::kUnit,
                      static_cast<double>(rank.peak_bytes));
    }
    return std::move(out_).finish();
  }

 private:
  struct Link {
    int peer;
    std::int64_t free_ns = 0;
    std::int64_t bytes = -1, transfer_ns = 0;  // the last message's size and time: stages send one size
  };
  struct Rank {
    std::size_t pc = 0;  // next action
    std::int64_t t = 0;  // when the compute stream is free
    std::int64_t units = 0, bytes = 0, peak_units = 0, peak_bytes = 0;
    int waiting_for = -1;     // the transfer key it stopped at; only the receiving rank ever waits for a key
    std::vector<Link> links;  // a rank talks to a handful of peers: a short list beats a map
  };
  // Per transfer, keyed by (direction, the receiving stage's position on the micro-batch's route,
  // micro-batch): DualPipe's micro-batches each visit half the stages, so positions need half the keys
  // stages would.
  struct Transfer {
    std::int64_t arrival_ns = -1, posted_ns = -1;
  };
  // What a pass receives from and sends to other ranks: transfer keys (-1: none) and the peer it sends to.
  // A forward receives from the stage before it on the micro-batch's route and sends to the one after; a
  // backward the other way round; W neither.
  struct HandOffs {
    int recv_key = -1, send_key = -1, send_peer = -1;
  };

  HandOffs hand_offs(const Pass& pass, int r) const {
    HandOffs h;
    if (pass.op == Op::W) return h;
    auto& path = s_.route(pass.microbatch);
    auto k = static_cast<std::size_t>(s_.position(pass.stage));
    int before = k > 0 ? path[k - 1] : -1, after = k + 1 < path.size() ? path[k + 1] : -1;
    bool forward = pass.op == Op::F;
    int from = forward ? before : after, to = forward ? after : before;
    int direction = forward ? 0 : route_length_, at = static_cast<int>(k), to_at = forward ? at + 1 : at - 1;
    if (from >= 0 && rank_of(from) != r) h.recv_key = (direction + at) * s_.microbatches + pass.microbatch;
    if (to >= 0 && rank_of(to) != r) {
      h.send_key = (direction + to_at) * s_.microbatches + pass.microbatch;
      h.send_peer = rank_of(to);
    }
    return h;
  }
  int rank_of(int stage) const { return s_.stage_to_rank[static_cast<std::size_t>(stage)]; }

  // Runs rank r's program until it needs a transfer that has not been posted, or meets a SEND/RECV (a
  // lowered schedule, which is the engine's to play: false).
  bool advance(int r) {
    auto& rank = ranks_[static_cast<std::size_t>(r)];
    auto& program = s_.programs[static_cast<std::size_t>(r)];
    for (; rank.pc < program.size(); ++rank.pc) {
      auto& action = program[rank.pc];
      if (!action.is_compute()) return false;
      auto passes = action.passes();
      HandOffs hands[2];
      for (std::size_t p = 0; p < passes.size(); ++p) {
        hands[p] = hand_offs(passes[p], r);
        if (hands[p].recv_key >= 0 && transfers_[static_cast<std::size_t>(hands[p].recv_key)].posted_ns < 0) {
          rank.waiting_for = hands[p].recv_key;
          return true;
        }
      }
      // The RECVs lower() puts before the action, in pass order: the compute stream waits only for the part
      // of each transfer after both ends were ready.
      auto t = rank.t;
      for (std::size_t p = 0; p < passes.size(); ++p) {
        if (hands[p].recv_key < 0) continue;
        auto& transfer = transfers_[static_cast<std::size_t>(hands[p].recv_key)];
        auto reached = t;
        t = std::max(t, transfer.arrival_ns);
        out_.add_wait(r, std::min(std::max(reached, transfer.posted_ns), t), t);
      }
      for (auto& pass : passes) change_memory(rank, memory_.at_start(pass));
      auto end = engine::later(t, c_.compute_ns(action, r));
      out_.add_compute(r, t, end);
      for (auto& pass : passes) change_memory(rank, memory_.at_end(pass));
      rank.t = end;
      // The SENDs after it.
      for (std::size_t p = 0; p < passes.size(); ++p)
        if (hands[p].send_key >= 0) post(r, rank, passes[p], hands[p]);
    }
    return true;
  }

  void post(int r, Rank& rank, const Pass& pass, const HandOffs& hand) {
    int peer = hand.send_peer;
    auto bytes = c_.stages[static_cast<std::size_t>(pass.stage)].activation_bytes;
    auto& link = link_to(rank, peer);
    if (link.bytes != bytes) {
      link.bytes = bytes;
      link.transfer_ns = c_.transfer_ns(r, peer, bytes);
    }
    auto arrival = engine::send_on_link(link.free_ns, rank.t, c_.link(r, peer), link.transfer_ns);
    auto& transfer = transfers_[static_cast<std::size_t>(hand.send_key)];
    transfer.arrival_ns = arrival;
    transfer.posted_ns = rank.t;
    out_.add_transfer(arrival, bytes);
    auto& receiver = ranks_[static_cast<std::size_t>(peer)];
    if (receiver.waiting_for == hand.send_key) {
      receiver.waiting_for = -1;
      ready_.push_back(peer);
    }
  }

  static Link& link_to(Rank& rank, int peer) {
    for (auto& link : rank.links)
      if (link.peer == peer) return link;
    return rank.links.emplace_back(Link{peer});
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
  int route_length_ = 0;  // the longest route's
  std::vector<Transfer> transfers_;
  std::vector<int> ready_;  // ranks to resume
};

}  // namespace

std::optional<Metrics> metrics_pass(const Schedule& schedule, const Costs& costs) {
  return MetricsPass(schedule, costs).run();
}

}  // namespace pipesim
