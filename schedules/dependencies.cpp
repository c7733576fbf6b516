// Pass locations and data dependencies (see dependencies.hpp).
#include "schedules/dependencies.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
PassIndex::PassIndex(const Schedule& schedule) {
  for (int st = 0; st < schedule.stages; ++st) position_.push_back(schedule.position(st));
  for (auto& route : schedule.routes) positions_ = std::max(positions_, route.size());
  offsets_.push_back(0);
  for (auto& program : schedule.programs) offsets_.push_back(offsets_.back() + static_cast<int>(program.size()));
  // Most schedules reaching here are compute-only: index 4 kinds, and start again with 8 at the first
  // SEND/RECV rather than scan the schedule for one first.
  if (fill(schedule)) return;
  lowered_ = true;
  kinds_ = 8;
  fill(schedule);
}

bool PassIndex::fill(const Schedule& schedule) {
  slots_.assign(kinds_ * positions_ * static_cast<std::size_t>(schedule.microbatches), -1);
  for (std::size_t r = 0; r < schedule.programs.size(); ++r) {
    auto& program = schedule.programs[r];
    for (std::size_t step = 0; step < program.size(); ++step) {
      if (!lowered_ && !program[step].is_compute()) return false;
      int id = offsets_[r] + static_cast<int>(step);
      for (auto& pass : program[step].passes()) {
        auto& at = slots_[slot(pass.op, pass.stage, pass.microbatch)];
        if (at >= 0)
          throw Error(fmt::format("pass {} appears twice: on rank {} at step {} and on rank {} at step {}",
                                  to_string(pass), rank_of(at), step_of(at), r, step));
        at = id;
      }
    }
  }
  return true;
}

int producers(const Schedule& schedule, const PassIndex& index, const Pass& pass, Pass out[2]) {
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
