// Validation of a schedule, before anything simulates or runs it:
//  - shape: placement, routes, stage and micro-batch numbers in range, each action on its stage's rank;
//  - each (stage, micro-batch) of a micro-batch's route has one F and either one B or one I and one W;
//    F before its I/B, I before its W;
//  - after lowering: every cross-rank hand-off has one SEND after its producer and one RECV before its
//    consumer, and nothing else;
//  - no deadlock: the dependency graph (program order on each rank + data dependencies between passes,
//    + SEND→RECV) has no cycle. Sends are taken as buffered (never block), so a cycle is exactly a run
//    that would hang. A cycle is reported with its actions and the grid marked (found with Boost.Graph,
//    built only then).
// A sound compute-only schedule is settled by one checked walk (schedules/play.hpp); the checks one by one
// run only when the walk refuses, for their messages.
// Throws Error (exit code 2) with the message; returns normally when the schedule is sound.
#pragma once

#include "schedules/schedule.hpp"

namespace pipesim {

// A compute-only schedule is played once (schedules/play.hpp), which checks everything below the shape as it
// goes; one it refuses, and every lowered schedule, goes through validate_each_check() for the message.
void validate(const Schedule& schedule);

// Each check in turn, on the pass index: what validate() falls back on, and the reference tests hold the
// walk to (tests/schedules/play_test.cpp).
void validate_each_check(const Schedule& schedule);

// The shape only (ranks, stages and micro-batches at least 1, the placement and routes consistent): what a
// caller needs to build per-stage and per-route tables. For a caller that plays the schedule at once and
// checks the rest as it goes (each pass in range, on its stage's rank and its micro-batch's route, once,
// every pass present, their order, no deadlock: the metrics pass, sim/metrics_pass.hpp), calling
// validate() for the message when it is wrong.
void validate_shape(const Schedule& schedule);

}  // namespace pipesim
