// Calibration from a measured run: per-stage F, I, W, B and F&B durations (medians over the steps after
// the first, robust to a noisy step), point-to-point latency and bandwidth from the runtime's
// microbenchmark, and the overlap slowdown (a measured F&B pair over its halves run apart). The file
// carries the run header (the lowered schedule that ran), so `simulate --calibration` needs nothing else.
// Also the comparison of a measured run with a predicted one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/timeline_file.hpp"

namespace pipesim {

// Medians over the steps used; empty: the run never executed that pass on that stage (FB: the pair whose
// forward half is the stage).
struct StageDurations {
  std::optional<std::int64_t> F_ns, I_ns, W_ns, B_ns, FB_ns;
};

struct Calibration {
  Schedule schedule;  // the run header: the lowered schedule the run executed
  int steps_used = 0;
  std::vector<StageDurations> stages;  // [stage]
  LinkFigures links;  // the run's microbenchmarks (its F/I/B times already include the EP all-to-all)
  double overlap_slowdown = 0;  // FB / (F + B) of the measured pairs; 0: no pairs
};

Calibration calibrate(const RunRecord& run);
// The first step calibrations learn from: 1 when the run has several (step 0 is a warm-up), else 0.
std::size_t first_calibrated_step(const RunRecord& run);
nlohmann::ordered_json to_json(const Calibration& c);
Calibration parse_calibration(const std::string& text, const std::string& source);

struct Comparison {
  double measured_makespan_ns = 0, predicted_makespan_ns = 0;
  double makespan_error = 0;  // (predicted - measured) / measured
  struct Rank {
    int rank;
    double bubble_measured, bubble_predicted, busy_ratio;  // busy_ratio: measured / predicted busy time
  };
  std::vector<Rank> ranks;
  struct Deviation {
    std::string action;
    int rank;
    double measured_ns, predicted_ns, ratio;
  };
  std::vector<Deviation> deviations;  // most deviating actions first
  // The rank whose measured busy time exceeds its prediction most, when it does so by more than 10 % over
  // the median rank's ratio (a slow GPU, a throttled node); -1 when no rank stands out.
  int straggler = -1;
  double median_busy_ratio = 0;
};

Comparison compare(const RunRecord& measured, const RunRecord& predicted);

}  // namespace pipesim
