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

}  // namespace pipesim
