// The discrete-event simulator: plays a schedule against costs and returns a Timeline. It reads only the
// IR (never a schedule's name). Each rank's compute stream runs its program in order; a SEND puts the
// transfer on the link to the peer (latency + bytes / bandwidth, transfers on one link served FIFO) and
// costs the compute stream nothing; a RECV waits until its data has arrived. Hand-offs between stages on
// one rank are free. Time is integer nanoseconds; events are ordered by (time, insertion sequence), so
// every run is identical.
#pragma once

#include <memory>

#include "schedules/schedule.hpp"
#include "sim/costs.hpp"
#include "traces/timeline.hpp"

namespace pipesim {

// Validates the schedule (and lowers it when it is compute-only), resolves the costs, then simulates.
// Throws Error on an invalid schedule or costs; a run that cannot finish is reported as a deadlock, never
// a hang.
Timeline simulate(const Schedule& schedule, const CostSpec& costs);

// The engine alone, for callers that simulate one schedule many times (sweeps, benchmarks): `lowered`
// must already be validated and lowered, and `costs` resolved for it.
Timeline simulate_lowered(std::shared_ptr<const Schedule> lowered, const Costs& costs);

}  // namespace pipesim
