// Send/receive insertion (see lower.hpp).
#include "schedules/lower.hpp"

#include "common/error.hpp"

namespace pipesim {

Schedule lower(const Schedule& schedule) {
  if (schedule.lowered()) throw Error("lower: the schedule already holds SEND/RECV actions", Error::Kind::Internal);
  Schedule out = schedule;
  auto rank = [&](int stage) { return schedule.stage_to_rank[static_cast<std::size_t>(stage)]; };
  // Neighbour of a pass along its micro-batch's route: the stage it receives from or sends to, or -1.
  std::vector<std::vector<int>> position(schedule.routes.size(),
                                         std::vector<int>(static_cast<std::size_t>(schedule.stages), -1));
  for (std::size_t i = 0; i < schedule.routes.size(); ++i)
    for (std::size_t k = 0; k < schedule.routes[i].size(); ++k)
      position[i][static_cast<std::size_t>(schedule.routes[i][k])] = static_cast<int>(k);
  auto neighbour = [&](const Pass& pass, int direction) {
    auto& route = schedule.route(pass.microbatch);
    auto route_index = static_cast<std::size_t>(schedule.route_of[static_cast<std::size_t>(pass.microbatch)]);
    long next = position[route_index][static_cast<std::size_t>(pass.stage)] + direction;
    return next < 0 || next >= static_cast<long>(route.size()) ? -1 : route[static_cast<std::size_t>(next)];
  };
  for (std::size_t r = 0; r < schedule.programs.size(); ++r) {
    auto& program = out.programs[r];
    program.clear();
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
