// The eight phases of deepseek-ai/DualPipe's step(), shared by DualPipe and DualPipeV: both run the same
// compute order on a rank given n (ranks per direction: PP/2 for DualPipe, PP for DualPipeV), the rank's
// distance h from its direction's entry (half_rank / rank), and C chunks per direction (m/2 / m).
// Phase 0 is the chunk nearest the rank's entry point, phase 1 the other. Communication is not part of
// this order: lowering inserts it.
#pragma once

#include <vector>

#include "schedules/action.hpp"

namespace pipesim {

struct DualPipeChunk {
  int stage;             // global stage id this rank runs for the phase
  int first_microbatch;  // micro-batch id of the phase's first chunk
};

// Appends the rank's order to `program` (the rank's program as start_schedule() reserved it: a fresh vector
// per rank would map and unmap a block each).
void dualpipe_program(int n, int h, int chunks, DualPipeChunk phase0, DualPipeChunk phase1,
                      std::vector<Action>& program);

}  // namespace pipesim
