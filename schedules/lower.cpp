// Send/receive insertion (see lower.hpp).
#include "schedules/lower.hpp"

#include "common/error.hpp"

namespace pipesim {

Schedule lower(const Schedule& schedule) {
  if (schedule.lowered()) throw Error("lower: the schedule already holds SEND/RECV actions", Error::Kind::Internal);
  Schedule out = schedule.without_programs();
  auto rank = [&](int stage) { return schedule.stage_to_rank[static_cast<std::size_t>(stage)]; };
  // The stage a pass receives from (direction -1 for F) or sends to, along its micro-batch's route.
  auto neighbour = [&](const Pass& pass, int direction) {
    return direction < 0 ? schedule.stage_before(pass.stage, pass.microbatch)
                         : schedule.stage_after(pass.stage, pass.microbatch);
  };
  for (std::size_t r = 0; r < schedule.programs.size(); ++r) {
    auto& program = out.programs[r];
    // At most a RECV before and a SEND after each F/I/B pass: reserved (untouched pages cost no memory),
    // so the program is never copied as it grows.
    std::size_t most = 0;
    for (auto& action : schedule.programs[r]) most += 1 + 2 * action.passes().size();
    program.reserve(most);
    for (auto& action : schedule.programs[r]) {
      for (auto& pass : action.passes()) {
        if (pass.op == Op::W) continue;
        int from = neighbour(pass, pass.op == Op::F ? -1 : +1);
        if (from >= 0 && rank(from) != rank(pass.stage))
          program.push_back(Action::single(pass.op == Op::F ? Op::RecvF : Op::RecvB, pass.stage, pass.microbatch));
      }
      program.push_back(action);
      for (auto& pass : action.passes()) {
        if (pass.op == Op::W) continue;
        int to = neighbour(pass, pass.op == Op::F ? +1 : -1);
        if (to >= 0 && rank(to) != rank(pass.stage))
          program.push_back(Action::single(pass.op == Op::F ? Op::SendF : Op::SendB, pass.stage, pass.microbatch));
      }
    }
  }
  return out;
}

}  // namespace pipesim
