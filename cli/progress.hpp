// Progress on stderr for commands that may run for seconds (a schedule of millions of actions): an
// up-front line when the work is large, and a line as each phase ends once the command has run longer than
// two seconds, so small runs stay silent and big ones never look hung.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "cli/schedule_source.hpp"
#include "common/error.hpp"
#include "schedules/registry.hpp"

namespace pipesim::cli {

class Progress {
 public:
  // `actions`: the expected number of actions; from 20 million (a second or more even at the simulator's
  // 10-20 million a second, docs/performance.md §7) the size is said at once.
  Progress(std::string command, double actions) : command_(std::move(command)) {
    loud_ = actions >= 2e7;
    if (loud_) fmt::print(stderr, "{}: about {:.0f}M actions (progress follows)\n", command_, actions / 1e6);
  }
  void done(std::string_view phase) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (loud_ || s > 2.0) fmt::print(stderr, "{}: {} ({:.1f} s)\n", command_, phase, s);
  }

 private:
  std::string command_;
  bool loud_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Roughly the actions a generated schedule will hold: two or three passes (F, B or I and W) of every stage
// a micro-batch visits, for every micro-batch; about twice that once lowered (a SEND and a RECV per
// hand-off). For the progress line only.
inline double expected_actions(int route_length, int microbatches, bool lowered) {
  double passes = 2.5 * route_length * static_cast<double>(microbatches);
  return lowered ? passes * 2 : passes;
}

// The stages a micro-batch visits under the first schedule `source` names (its registry layout's longest
// route, without generating the schedule: half the stages under DualPipe); 0 for a CSV or an unknown name
// (whose error comes later, from the load).
inline int route_length_of(const ScheduleSource& source) {
  if (!source.from_csv.empty() || source.schedule.empty()) return 0;
  try {
    auto name = source.schedule.substr(0, source.schedule.find(','));
    auto& info = find_schedule(name);
    auto options = source.generator_options();
    if (info.supports(options)) return 0;  // a size problem: the load names it
    std::size_t longest = 0;
    for (auto& route : info.layout(options).routes) longest = std::max(longest, route.size());
    return static_cast<int>(longest);
  } catch (const Error&) {
    return 0;
  }
}

}  // namespace pipesim::cli
