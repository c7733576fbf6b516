// Event kernel and rank interpreter of the simulator (see engine.hpp); memory and link rules in
// engine_rules.hpp.
#include "sim/engine.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <queue>

#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/lower.hpp"
#include "schedules/validate.hpp"
#include "sim/engine_rules.hpp"
#include "sim/metrics_pass.hpp"
#include "traces/metrics.hpp"

namespace pipesim {
namespace {

using engine::kUnit;
using engine::later;

struct Event {
  enum class Kind : std::uint8_t { ComputeDone, Arrival };
  std::int64_t time_ns;
  std::uint64_t seq;
  Kind kind;
  int target;  // ComputeDone: rank; Arrival: the RECV's recv_key
  bool operator>(const Event& other) const {
    return time_ns != other.time_ns ? time_ns > other.time_ns : seq > other.seq;
  }
};

class EventQueue {
 public:
  void push(std::int64_t time_ns, Event::Kind kind, int target) { heap_.push({time_ns, next_++, kind, target}); }
  bool empty() const { return heap_.empty(); }
  Event pop() {
    auto e = heap_.top();
    heap_.pop();
    return e;
  }

 private:
  std::priority_queue<Event, std::vector<Event>, std::greater<>> heap_;
  std::uint64_t next_ = 0;
};

// Where the engine's spans and memory samples go: each rank writes its compute spans, then its transfers,
// into its own slice, in time order, so the timeline comes out sorted by (rank, stream, start) with no sort
// and no copy.
class TimelineRecorder {
 public:
  using Result = Timeline;
  explicit TimelineRecorder(const std::shared_ptr<const Schedule>& schedule) {
    auto& s = *schedule;
    auto n = static_cast<std::size_t>(s.ranks);
    compute_at_.assign(n, 0);
    p2p_at_.assign(n, 0);
    memory_at_.assign(n, 0);
    std::size_t spans = 0, samples = 0;
    for (std::size_t r = 0; r < n; ++r) {
      compute_at_[r] = spans;
      memory_at_[r] = samples++;  // the initial sample, then one per pass
      std::size_t sends = 0;
      for (auto& a : s.programs[r]) {
        sends += a.op == Op::SendF || a.op == Op::SendB;
        samples += a.is_compute() ? a.passes().size() : 0;
      }
      spans += s.programs[r].size() - sends;
      p2p_at_[r] = spans;
      spans += sends;
    }
    out_.schedule = schedule;
    out_.spans.resize(spans);
    out_.memory.resize(samples);
  }
  void compute(const Span& span) { out_.spans[compute_at_[static_cast<std::size_t>(span.rank)]++] = span; }
  void transfer(const Span& span) { out_.spans[p2p_at_[static_cast<std::size_t>(span.rank)]++] = span; }
  void memory(const MemorySample& sample) { out_.memory[memory_at_[static_cast<std::size_t>(sample.rank)]++] = sample; }
  Timeline finish() { return std::move(out_); }

 private:
  Timeline out_;
  std::vector<std::size_t> compute_at_, p2p_at_, memory_at_;  // per rank: next slot in the timeline
};

class Engine {
 public:
  Engine(std::shared_ptr<const Schedule> lowered, const Costs& c)
      : schedule_(std::move(lowered)), s_(*schedule_), c_(c), memory_(s_, c), out_(schedule_) {
    auto n = static_cast<std::size_t>(s_.ranks);
    pc_.assign(n, 0);
    busy_.assign(n, false);
    reached_ns_.assign(n, -1);
    units_.assign(n, 0);
    bytes_.assign(n, 0);
    auto keys = 2 * static_cast<std::int64_t>(s_.stages) * s_.microbatches;
    if (keys > std::numeric_limits<int>::max())
      throw Error(fmt::format("simulation: {} stages x {} micro-batches is too large to simulate", s_.stages, s_.microbatches));
    transfers_.assign(static_cast<std::size_t>(keys), Transfer{});
    links_.resize(n);
    started_ns_.assign(n, 0);
  }

  Timeline run() {
    for (int r = 0; r < s_.ranks; ++r) {
      sample(r, 0);
      advance(r, 0);
    }
    while (!queue_.empty()) {
      auto e = queue_.pop();
      if (e.kind == Event::Kind::ComputeDone) {
        finish_compute(e.target, e.time_ns);
        advance(e.target, e.time_ns);
      } else {
        transfers_[static_cast<std::size_t>(e.target)].arrival_ns = e.time_ns;
        int stage = e.target / s_.microbatches % s_.stages;
        auto r = static_cast<std::size_t>(s_.stage_to_rank[static_cast<std::size_t>(stage)]);
        if (!busy_[r] && pc_[r] < s_.programs[r].size() && recv_key(s_.programs[r][pc_[r]]) == e.target)
          advance(static_cast<int>(r), e.time_ns);
      }
    }
    for (int r = 0; r < s_.ranks; ++r)
      if (pc_[static_cast<std::size_t>(r)] < s_.programs[static_cast<std::size_t>(r)].size())
        throw Error(fmt::format("simulation deadlock: rank {} stopped at step {} ({}) with nothing left to wait for", r,
                                pc_[static_cast<std::size_t>(r)],
                                to_string(s_.programs[static_cast<std::size_t>(r)][pc_[static_cast<std::size_t>(r)]])),
                    Error::Kind::Internal);
    return out_.finish();
  }

 private:
  // Runs rank r's program from time t until it starts a compute action or waits for data.
  void advance(int r, std::int64_t t) {
    auto ri = static_cast<std::size_t>(r);
    auto& program = s_.programs[ri];
    while (!busy_[ri] && pc_[ri] < program.size()) {
      auto& action = program[pc_[ri]];
      if (action.op == Op::RecvF || action.op == Op::RecvB) {
        if (reached_ns_[ri] < 0) reached_ns_[ri] = t;
        auto& transfer = transfers_[static_cast<std::size_t>(recv_key(action))];
        if (transfer.arrival_ns < 0) return;  // woken by the Arrival event
        // The compute stream waited only for the part of the transfer after both ends were ready.
        auto from = std::max(reached_ns_[ri], transfer.posted_ns);
        out_.compute({r, Stream::Compute, action, std::min(from, t), t, 0, source_rank(action), transfer.flow});
        reached_ns_[ri] = -1;
      } else if (action.op == Op::SendF || action.op == Op::SendB) {
        post_transfer(r, action, t);
      } else {
        busy_[ri] = true;
        started_ns_[ri] = t;
        for (auto& pass : action.passes())
          if (pass.op == Op::F) change_memory(r, t, memory_.at_start(pass));
        queue_.push(later(t, c_.compute_ns(action, r)), Event::Kind::ComputeDone, r);
        return;
      }
      ++pc_[ri];
    }
  }

  void finish_compute(int r, std::int64_t t) {
    auto ri = static_cast<std::size_t>(r);
    auto& action = s_.programs[ri][pc_[ri]];
    out_.compute({r, Stream::Compute, action, started_ns_[ri], t, 0, -1, -1});
    for (auto& pass : action.passes())
      if (pass.op != Op::F) change_memory(r, t, memory_.at_end(pass));
    busy_[ri] = false;
    ++pc_[ri];
  }

  void post_transfer(int r, const Action& send, std::int64_t t) {
    bool forward = send.op == Op::SendF;
    int peer_stage = forward ? s_.stage_after(send.stage(), send.microbatch()) : s_.stage_before(send.stage(), send.microbatch());
    int recv = recv_key(forward ? Op::RecvF : Op::RecvB, peer_stage, send.microbatch());
    int peer = s_.stage_to_rank[static_cast<std::size_t>(peer_stage)];
    auto bytes = c_.stages[static_cast<std::size_t>(send.stage())].activation_bytes;
    auto arrival = links_[static_cast<std::size_t>(r)].send(c_, r, peer, t, bytes);
    auto flow = next_flow_++;
    transfers_[static_cast<std::size_t>(recv)].posted_ns = t;
    transfers_[static_cast<std::size_t>(recv)].flow = flow;
    out_.transfer({r, Stream::P2P, send, t, arrival, bytes, peer, flow});
    queue_.push(arrival, Event::Kind::Arrival, recv);
  }

  // A RECV's slot among the transfers: one per (direction, stage, micro-batch), which a valid lowered schedule
  // receives once; -1 for any other action.
  int recv_key(Op op, int stage, int microbatch) const {
    return ((op == Op::RecvB ? s_.stages : 0) + stage) * s_.microbatches + microbatch;
  }
  int recv_key(const Action& a) const {
    return a.op == Op::RecvF || a.op == Op::RecvB ? recv_key(a.op, a.stage(), a.microbatch()) : -1;
  }

  int source_rank(const Action& recv) const {
    int from = recv.op == Op::RecvF ? s_.stage_before(recv.stage(), recv.microbatch())
                                    : s_.stage_after(recv.stage(), recv.microbatch());
    return s_.stage_to_rank[static_cast<std::size_t>(from)];
  }

  void change_memory(int r, std::int64_t t, engine::MemoryChange change) {
    units_[static_cast<std::size_t>(r)] += change.units;
    bytes_[static_cast<std::size_t>(r)] += change.bytes;
    sample(r, t);
  }

  void sample(int r, std::int64_t t) {
    out_.memory({r, t, static_cast<double>(units_[static_cast<std::size_t>(r)]) / kUnit,
                 static_cast<double>(bytes_[static_cast<std::size_t>(r)])});
  }

  std::shared_ptr<const Schedule> schedule_;
  const Schedule& s_;
  const Costs& c_;
  engine::PassMemory memory_;
  EventQueue queue_;
  std::vector<std::size_t> pc_;
  std::vector<bool> busy_;
  std::vector<std::int64_t> reached_ns_, started_ns_, units_, bytes_;
  struct Transfer {  // per RECV (recv_key): the transfer it takes
    std::int64_t arrival_ns = -1, posted_ns = -1, flow = -1;
  };
  std::vector<Transfer> transfers_;
  std::vector<engine::RankLinks> links_;  // [rank]
  std::int64_t next_flow_ = 0;
  TimelineRecorder out_;
};

std::shared_ptr<const Schedule> lowered_copy(const Schedule& schedule) {
  return std::make_shared<const Schedule>(schedule.lowered() ? schedule : lower(schedule));
}

}  // namespace

Timeline simulate_lowered(std::shared_ptr<const Schedule> lowered, const Costs& costs) {
  return Engine(std::move(lowered), costs).run();
}

Timeline simulate(const Schedule& schedule, const CostSpec& spec, Validation validation) {
  if (validation != Validation::AlreadyDone) validate(schedule);
  auto costs = resolve_costs(spec, schedule);
  return simulate_lowered(lowered_copy(schedule), costs);
}

Metrics simulate_metrics(const Schedule& schedule, const CostSpec& spec, Validation validation) {
  // A compute-only schedule takes the one-pass path, which checks what validate_shape() leaves out as it
  // plays; a schedule it declines (SEND/RECV placed by hand, a pass out of place, missing, twice or out of
  // order, a deadlock) is validated in full, which names what is wrong, and what is sound goes to the engine.
  if (validation == Validation::Check) validate_shape(schedule);
  std::optional<Costs> costs;
  std::optional<Metrics> metrics;
  try {
    costs = resolve_costs(spec, schedule);
    metrics = metrics_pass(schedule, *costs);
  } catch (const Error&) {  // costs refused, or time past 2^63 ns: a broken schedule still says so first
    if (validation != Validation::AlreadyDone) validate(schedule);
    throw;
  }
  if (metrics) return *std::move(metrics);
  if (validation != Validation::AlreadyDone) validate(schedule);
  return compute_metrics(simulate_lowered(lowered_copy(schedule), *costs));
}

}  // namespace pipesim
