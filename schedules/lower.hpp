// Lowering: inserts the communication of a compute schedule. For every hand-off between stages on
// different ranks, the producing rank gets a SEND right after the producing pass and the consuming rank a
// RECV right before the consuming pass (as DualPipe's code posts them; PyTorch's _add_send_recv places
// RECVs earlier, which our validation also accepts). Hand-offs on one rank cost nothing and get none.
// Sends are eager (never block); a RECV completes once its SEND has been issued.
#pragma once

#include "schedules/schedule.hpp"

namespace pipesim {

// Requires a validated compute-only schedule; returns it with SEND_F/RECV_F/SEND_B/RECV_B added.
Schedule lower(const Schedule& schedule);

}  // namespace pipesim
