// The metrics of a compute-only schedule in one pass over its actions: the checked walk of
// schedules/play.hpp, timing each action as it comes. No events, no lowered copy of the schedule, no spans:
// a RECV before an action and a SEND after it are implied, where lower() would put them. The rules are the
// event engine's (engine_rules.hpp), so the numbers are the same (tests/sim/engine_metrics_test.cpp
// compares them on thousands of random schedules and costs); it is what simulate_metrics() runs
// (docs/performance.md §2).
#pragma once

#include <optional>

#include "schedules/schedule.hpp"
#include "sim/costs.hpp"
#include "traces/metrics.hpp"

namespace pipesim {

// `schedule` through validate_shape() at least, `costs` resolved for it. It checks the rest of what
// validate() checks as it plays: each pass in range, on its stage's rank and its micro-batch's route; each
// pass once, after the passes it needs on its rank; every rank finishes; each stage of each micro-batch's
// route ran F and either B or I and W. Empty when the schedule
// holds SEND/RECV actions (placed by hand, or lowered) or fails one of those: the caller then validates it
// in full (which names the problem) and runs the engine on what is sound.
std::optional<Metrics> metrics_pass(const Schedule& schedule, const Costs& costs);

}  // namespace pipesim
