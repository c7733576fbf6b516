// Timelines on disk (the file `pipesim run --timeline` writes and `simulate --timeline` predicts): the run
// header (the lowered schedule that ran, in `pipesim schedule --format json`'s form), the workload, the
// runtime's microbenchmark, and one list of spans per step. Both interpreters write it, so calibrate and
// compare read measured and predicted runs alike.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/timeline.hpp"

namespace pipesim {

struct RunRecord {
  Schedule schedule;                  // the lowered schedule that ran: the run header (schedules/schedule.hpp)
  std::string source;                 // "measured" or "predicted"
  nlohmann::json workload;            // free-form: model, sizes, precision
  double p2p_latency_ns = 0;          // from the runtime's ping-pong microbenchmark
  double p2p_bandwidth_GBps = 0;
  std::int64_t activation_bytes = 0;  // per hand-off
  double all_to_all_GBps = 0;         // expert-parallel all-to-all, bytes each rank sends per second (0: no EP)
  std::vector<std::vector<Span>> steps;
};

std::string to_json_text(const RunRecord& record);
// Throws Error naming the file and the field on malformed or truncated input.
RunRecord parse_run_record(const std::string& text, const std::string& source);

}  // namespace pipesim
