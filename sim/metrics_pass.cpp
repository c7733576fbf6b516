// The metrics pass (see metrics_pass.hpp).
#include "sim/metrics_pass.hpp"

#include <fmt/format.h>

#include "sim/engine_rules.hpp"

namespace pipesim {
namespace {

class MetricsPass {
 public:
  MetricsPass(const Schedule& s, const Costs& c) : s_(s), c_(c), memory_(s, c), out_(s) {
    auto keys = 2 * static_cast<std::int64_t>(s.stages) * s.microbatches;
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
      advance(r);
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
  struct Rank {
    std::size_t pc = 0;  // next action
    std::int64_t t = 0;  // when the compute stream is free
    std::int64_t units = 0, bytes = 0, peak_units = 0, peak_bytes = 0;
    int waiting_for = -1;  // the transfer key it stopped at; only the receiving rank ever waits for a key
    std::vector<std::pair<int, std::int64_t>> links;  // (peer, link free from): a rank talks to a handful
  };
  struct Transfer {  // per RECV key (direction, stage, micro-batch), as the engine keys them
    std::int64_t arrival_ns = -1, posted_ns = -1;
  };

  // Runs rank r's program until it needs a transfer that has not been posted.
  void advance(int r) {
    auto& rank = ranks_[static_cast<std::size_t>(r)];
    auto& program = s_.programs[static_cast<std::size_t>(r)];
    for (; rank.pc < program.size(); ++rank.pc) {
      auto& action = program[rank.pc];
      auto passes = action.passes();
      int recvs[2], count = 0;
      for (auto& pass : passes) {
        int key = transfer_key(pass, r, -1);
        if (key < 0) continue;
        auto& transfer = transfers_[static_cast<std::size_t>(key)];
        if (transfer.posted_ns < 0) {
          rank.waiting_for = key;
          return;
        }
        recvs[count++] = key;
      }
      // The RECVs lower() puts before the action, in pass order: the compute stream waits only for the part
      // of each transfer after both ends were ready.
      auto t = rank.t;
      for (int k = 0; k < count; ++k) {
        auto& transfer = transfers_[static_cast<std::size_t>(recvs[k])];
        auto reached = t;
        t = std::max(t, transfer.arrival_ns);
        out_.add_wait(r, std::min(std::max(reached, transfer.posted_ns), t), t);
      }
      for (auto& pass : passes)
        if (pass.op == Op::F) change_memory(rank, memory_.at_start(pass));
      auto end = engine::later(t, c_.compute_ns(action, r));
      out_.add_compute(r, t, end);
      for (auto& pass : passes)
        if (pass.op != Op::F) change_memory(rank, memory_.at_end(pass));
      rank.t = end;
      // The SENDs after it.
      for (auto& pass : passes) {
        int key = transfer_key(pass, r, +1);
        if (key >= 0) post(r, rank, pass, key);
      }
    }
  }

  // The key of the transfer a pass receives (side -1) or sends (+1) across ranks, -1 when there is none.
  // A forward receives from the stage before it on the micro-batch's route and sends to the one after; a
  // backward the other way round; W neither.
  int transfer_key(const Pass& pass, int r, int side) const {
    if (pass.op == Op::W) return -1;
    int step = pass.op == Op::F ? side : -side;
    int other = step < 0 ? s_.stage_before(pass.stage, pass.microbatch) : s_.stage_after(pass.stage, pass.microbatch);
    if (other < 0 || s_.stage_to_rank[static_cast<std::size_t>(other)] == r) return -1;
    int receiver = side < 0 ? pass.stage : other;  // keyed by the receiving end
    return ((pass.op == Op::F ? 0 : s_.stages) + receiver) * s_.microbatches + pass.microbatch;
  }

  void post(int r, Rank& rank, const Pass& pass, int key) {
    int peer_stage = pass.op == Op::F ? s_.stage_after(pass.stage, pass.microbatch)
                                      : s_.stage_before(pass.stage, pass.microbatch);
    int peer = s_.stage_to_rank[static_cast<std::size_t>(peer_stage)];
    auto bytes = c_.stages[static_cast<std::size_t>(pass.stage)].activation_bytes;
    auto arrival = engine::send_on_link(link_free_ns(rank, peer), rank.t, c_.link(r, peer), c_.transfer_ns(r, peer, bytes));
    auto& transfer = transfers_[static_cast<std::size_t>(key)];
    transfer.arrival_ns = arrival;
    transfer.posted_ns = rank.t;
    out_.add_transfer(arrival, bytes);
    auto& receiver = ranks_[static_cast<std::size_t>(peer)];
    if (receiver.waiting_for == key) {
      receiver.waiting_for = -1;
      ready_.push_back(peer);
    }
  }

  static std::int64_t& link_free_ns(Rank& rank, int peer) {
    for (auto& [to, free_ns] : rank.links)
      if (to == peer) return free_ns;
    return rank.links.emplace_back(peer, 0).second;
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
  std::vector<Transfer> transfers_;
  std::vector<int> ready_;  // ranks to resume
};

}  // namespace

std::optional<Metrics> metrics_pass(const Schedule& schedule, const Costs& costs) {
  return MetricsPass(schedule, costs).run();
}

}  // namespace pipesim
