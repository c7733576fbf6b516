// The metrics of a compute-only schedule in one pass over its actions: each rank runs its program in order
// until it needs a transfer no one has sent yet, then waits in a list for that transfer, and the rank that
// sends it resumes it. No events, no lowered copy of the schedule, no spans: a RECV before an action and a
// SEND after it are implied, where lower() would put them. The rules are the event engine's
// (engine_rules.hpp), so the numbers are the same (tests/sim/engine_metrics_test.cpp compares them on
// thousands of random schedules and costs); it is what simulate_metrics() runs (docs/performance.md §2).
#pragma once

#include <optional>

#include "schedules/schedule.hpp"
#include "sim/costs.hpp"
#include "traces/metrics.hpp"

namespace pipesim {

// `schedule` validated, `costs` resolved for it. Empty when the schedule holds SEND/RECV actions (placed by
// hand, or lowered) or the ranks cannot all finish (a deadlock, which validate() refuses): the caller runs
// the engine, which plays the first and explains the second.
std::optional<Metrics> metrics_pass(const Schedule& schedule, const Costs& costs);

}  // namespace pipesim
