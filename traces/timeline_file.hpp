// Timelines on disk (the file `pipesim run --timeline` writes and `simulate --timeline` predicts): the run
// header (the lowered schedule that ran, in `pipesim schedule --format json`'s form), the workload, the
// runtime's microbenchmark, and one list of spans per step. Both interpreters write it, so calibrate and
// compare read measured and predicted runs alike.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json.hpp"
#include "traces/timeline.hpp"

namespace pipesim {

// The runtime's microbenchmarks, measured before a run (runtime/measure.hpp): what calibration turns into
// the simulator's link costs.
struct LinkFigures {
  double p2p_latency_ns = 0;          // ping-pong between ranks 0 and 1
  double p2p_bandwidth_GBps = 0;      // activation-sized messages; GB/s = bytes per ns
  std::int64_t activation_bytes = 0;  // one hand-off
  double all_to_all_GBps = 0;         // the EP group's all-to-all, bytes each rank sends per ns; 0 without EP
};

struct RunRecord {
  Schedule schedule;                  // the lowered schedule that ran: the run header (schedules/schedule.hpp)
  std::string source;                 // "measured" or "predicted"
  nlohmann::json workload;            // free-form: model, sizes, precision
  LinkFigures links;
  std::vector<std::vector<Span>> steps;
  std::vector<std::vector<KernelSpan>> kernels;  // per step, when the run recorded GPU kernels; else empty
};

// One span as the compact array [rank, "stream", "action", start_ns, end_ns, bytes, peer, flow] (DP spans
// name no action: ""), and back; errors name the array's path. Run files and the runtime's gathering both
// move spans in this form.
nlohmann::json span_to_json(const Span& span);
Span span_from_json(const JsonReader& array, int ranks);

// A kernel as the compact array [rank, stream, "name", start_ns, end_ns, bytes], followed for an operator the
// stage tagged by [op, "kind", "pass", flops, op_bytes, min_dim]; and back.
nlohmann::json kernel_to_json(const KernelSpan& kernel);
KernelSpan kernel_from_json(const JsonReader& array, int ranks);

std::string to_json_text(const RunRecord& record);
// Throws Error naming the file and the field on malformed or truncated input.
RunRecord parse_run_record(const std::string& text, const std::string& source);

}  // namespace pipesim
