// Where each pass of a schedule sits (rank, step, global node id) and which passes it needs first.
// Shared by validation and by the interpreters (simulator, runtime), so all agree on the data flow:
//   F(s)   needs F(prev stage) of the micro-batch's route;
//   I/B(s) needs F(s) and the backward (I or B) of the next stage (none on the route's last stage);
//   W(s)   needs I(s).
// In a lowered schedule a cross-rank input comes from the local RECV, which needs the peer's SEND,
// which needs the producing pass.
#pragma once

#include <algorithm>
#include <vector>

#include "schedules/schedule.hpp"

namespace pipesim {

class PassIndex {
 public:
  // Requires a schedule whose shape and placement are valid (stage and micro-batch numbers in range, each
  // pass on its micro-batch's route); throws Error on a pass that appears twice.
  explicit PassIndex(const Schedule& schedule);

  int node(Op op, int stage, int microbatch) const {  // -1 when absent
    return op > Op::B && !lowered_ ? -1 : slots_[slot(op, stage, microbatch)];
  }
  int node(const Pass& pass) const { return node(pass.op, pass.stage, pass.microbatch); }
  int nodes() const { return offsets_.back(); }
  bool lowered() const { return lowered_; }
  int rank_of(int node) const {  // ranks are few: a binary search over their first nodes beats a table per node
    return static_cast<int>(std::upper_bound(offsets_.begin(), offsets_.end(), node) - offsets_.begin()) - 1;
  }
  int step_of(int node) const { return node - offsets_[static_cast<std::size_t>(rank_of(node))]; }
  int node_at(int rank, int step) const { return offsets_[static_cast<std::size_t>(rank)] + step; }

 private:
  std::vector<int> position_;  // [stage] -> its position on the routes that visit it
  std::size_t positions_ = 0;  // the longest route's length
  bool lowered_ = false;
  std::size_t kinds_ = 4;      // F I W B, and SEND_F RECV_F SEND_B RECV_B when lowered
  std::vector<int> offsets_;  // [rank] -> first node id; back() = total
  // [microbatch][position of the stage on its route][kind] -> node id or -1: a micro-batch's passes on
  // neighbouring stages, which validation looks up together, sit together, and a micro-batch takes room only
  // for the stages it visits (half of them under DualPipe).
  std::vector<int> slots_;
  std::size_t slot(Op op, int stage, int microbatch) const {
    auto k = static_cast<std::size_t>(op) - (op > Op::OverlapFB);
    auto at = static_cast<std::size_t>(position_[static_cast<std::size_t>(stage)]);
    return (static_cast<std::size_t>(microbatch) * positions_ + at) * kinds_ + k;
  }
  bool fill(const Schedule& schedule);  // false: met a SEND/RECV with kinds_ = 4
};

// The passes `pass` needs, written to `out`; returns how many (0..2). A needed pass that the schedule
// lacks is still returned: its node() is -1. Inline: validation asks for every pass.
inline int producers(const Schedule& schedule, const PassIndex& index, const Pass& pass, Pass out[2]) {
  int mb = pass.microbatch;
  auto rank = [&](int stage) { return schedule.stage_to_rank[static_cast<std::size_t>(stage)]; };
  bool lowered = index.lowered();
  int n = 0;
  auto backward_of = [&](int stage) {
    return Pass{index.node(Op::I, stage, mb) >= 0 ? Op::I : Op::B, stage, mb};
  };
  // The input a pass receives from a neighbouring stage: direct, or through the local RECV.
  auto input_from = [&](Op recv, int neighbour, Pass direct) {
    out[n++] = lowered && rank(neighbour) != rank(pass.stage) ? Pass{recv, pass.stage, mb} : direct;
  };
  switch (pass.op) {
    case Op::F:
      if (int before = schedule.stage_before(pass.stage, mb); before >= 0) input_from(Op::RecvF, before, Pass{Op::F, before, mb});
      break;
    case Op::I:
    case Op::B:
      out[n++] = Pass{Op::F, pass.stage, mb};
      if (int after = schedule.stage_after(pass.stage, mb); after >= 0) input_from(Op::RecvB, after, backward_of(after));
      break;
    case Op::W: out[n++] = Pass{Op::I, pass.stage, mb}; break;
    case Op::SendF: out[n++] = Pass{Op::F, pass.stage, mb}; break;
    case Op::SendB: out[n++] = backward_of(pass.stage); break;
    case Op::RecvF:
      if (int before = schedule.stage_before(pass.stage, mb); before >= 0) out[n++] = Pass{Op::SendF, before, mb};
      break;
    case Op::RecvB:
      if (int after = schedule.stage_after(pass.stage, mb); after >= 0) out[n++] = Pass{Op::SendB, after, mb};
      break;
    case Op::OverlapFB: break;
  }
  return n;
}


}  // namespace pipesim
