// Schedules as CSV in PyTorch pipelining's layout (_dump_csv / _load_csv): one row per rank, one action
// per cell in the text form, compute-only or lowered (with SEND/RECV). Empty cells (PyTorch's bubbles)
// are skipped on import, and so are PyTorch's UNSHARD / RESHARD / REDUCE_GRAD bookkeeping cells. On import a stage belongs to the rank whose row holds it, and a micro-batch
// visits the stages it appears in, in increasing stage order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "schedules/schedule.hpp"

namespace pipesim {

std::string to_csv(const Schedule& schedule);

// `source` names the input in error messages (a file name). Throws Error naming line, cell and value.
// The result is not validated: call validate().
Schedule from_csv(std::string_view text, std::string_view source = "csv");

// A schedule from each rank's program in order (what a CSV row or an imported trace holds): stage -> rank
// from where stages appear, routes inferred. Named "csv"; not validated. Errors name `source`.
Schedule schedule_from_programs(std::vector<std::vector<Action>> programs, std::string_view source);

}  // namespace pipesim
