// The metrics pass (see metrics_pass.hpp): the checked walk of schedules/play.hpp, timing each action as it
// comes.
#include "sim/metrics_pass.hpp"

#include <algorithm>
#include <vector>

#include "schedules/play.hpp"
#include "sim/engine_rules.hpp"

namespace pipesim {
namespace {

class MetricsPass {
 public:
  MetricsPass(const Schedule& s, const Costs& c) : s_(s), c_(c), memory_(s, c), out_(s), play_(s) {
    streams_ = 2 * s.stages;
    // A rank runs ahead of the next by at most a pipeline's depth of micro-batches under most schedules
    // (more under GPipe-like warm-ups, and then the ring grows), and never by more than all of them.
    while ((1 << window_bits_) < std::min(s.microbatches, s.ranks)) ++window_bits_;
    transfers_.resize(static_cast<std::size_t>(streams_) << window_bits_);
    ranks_.resize(static_cast<std::size_t>(s.ranks));
  }

  std::optional<Metrics> run() {
    if (!play_.run([this](int r, const Action& action, const Play::Hop* const* hops) { time(r, action, hops); }))
      return std::nullopt;
    for (std::size_t r = 0; r < ranks_.size(); ++r)
      out_.add_memory(static_cast<int>(r), static_cast<double>(ranks_[r].peak_units) / engine::kUnit,
                      static_cast<double>(ranks_[r].peak_bytes));
    return std::move(out_).finish();
  }

 private:
  struct Rank {
    std::int64_t t = 0;  // when the compute stream is free
    std::int64_t units = 0, bytes = 0, peak_units = 0, peak_bytes = 0;
    engine::RankLinks links;
  };
  // Per transfer, keyed by (direction, receiving stage, micro-batch). Only posted, not yet received
  // transfers are held: each (direction, stage) stream is a ring of 2^window_bits_ slots indexed by
  // micro-batch, doubled when a post finds its slot taken. A stream holds about a pipeline's depth of
  // transfers at a time and the table stays in cache, where one entry per micro-batch would miss it at
  // every receive (docs/performance.md §6).
  struct Transfer {
    std::int64_t arrival_ns = -1, posted_ns = -1;
    int microbatch = -1;  // -1: free
  };
  int stream(const Pass& pass, int stage) const { return (pass.op == Op::F ? 0 : s_.stages) + stage; }
  Transfer& slot(int stream, int microbatch) {
    return transfers_[(static_cast<std::size_t>(stream) << window_bits_) |
                      (static_cast<std::size_t>(microbatch) & ((std::size_t{1} << window_bits_) - 1))];
  }
  void grow() {
    std::vector<Transfer> old(static_cast<std::size_t>(streams_) << ++window_bits_);
    old.swap(transfers_);
    for (std::size_t i = 0; i < old.size(); ++i)
      if (old[i].microbatch >= 0) slot(static_cast<int>(i >> (window_bits_ - 1)), old[i].microbatch) = old[i];
  }

  // One action, once the walk has run everything it needs (so every transfer it receives was posted): the
  // RECVs lower() would put before it, its compute, the SENDs after it.
  void time(int r, const Action& action, const Play::Hop* const* hops) {
    auto& rank = ranks_[static_cast<std::size_t>(r)];
    auto passes = action.passes();
    // The RECVs, in pass order: the compute stream waits only for the part of each transfer after both ends
    // were ready.
    auto t = rank.t;
    for (std::size_t p = 0; p < passes.size(); ++p) {
      if (passes[p].op == Op::W || !hops[p]->recv) continue;
      auto& transfer = slot(stream(passes[p], passes[p].stage), passes[p].microbatch);
      if (transfer.microbatch != passes[p].microbatch)
        throw Error("metrics pass: a transfer received before it was sent", Error::Kind::Internal);
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
    for (std::size_t p = 0; p < passes.size(); ++p)
      if (passes[p].op != Op::W && hops[p]->send_to >= 0) post(r, rank, passes[p], *hops[p]);
  }

  void post(int r, Rank& rank, const Pass& pass, const Play::Hop& hop) {
    auto bytes = c_.stages[static_cast<std::size_t>(pass.stage)].activation_bytes;
    auto arrival = rank.links.send(c_, r, hop.send_peer, rank.t, bytes);
    // Each key is posted once (Play: a pass runs once, and one backward per stage and micro-batch), so a
    // taken slot holds another micro-batch, and a larger ring separates them.
    int to = stream(pass, hop.send_to);
    for (int taken; (taken = slot(to, pass.microbatch).microbatch) >= 0; grow())
      if (taken == pass.microbatch) throw Error("metrics pass: a transfer sent twice", Error::Kind::Internal);
    slot(to, pass.microbatch) = {arrival, rank.t, pass.microbatch};
    out_.add_transfer(arrival, bytes);
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
  Play play_;
  std::vector<Rank> ranks_;
  int streams_ = 0, window_bits_ = 0;
  std::vector<Transfer> transfers_;  // [stream][micro-batch mod 2^window_bits_]
};

}  // namespace

std::optional<Metrics> metrics_pass(const Schedule& schedule, const Costs& costs) {
  return MetricsPass(schedule, costs).run();
}

}  // namespace pipesim
