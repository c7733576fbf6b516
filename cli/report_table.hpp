// Human-readable tables of simulation results (the default output of simulate, study and sweep).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "schedules/schedule.hpp"
#include "sim/step.hpp"
#include "traces/metrics.hpp"

namespace pipesim::cli {

std::string schedule_metrics_table(const Schedule& schedule, const Metrics& metrics);
// `cost_per_rank`: whether --cost was scaled to each schedule's chunk size (else a note says how to compare).
std::string schedule_comparison_table(const std::vector<Schedule>& schedules, const std::vector<Metrics>& metrics,
                                      bool cost_per_rank);
std::string describe_plan(const StepReport& r, bool with_schedule = true);
std::string step_report_table(const StepReport& r);
std::string step_comparison_table(const std::vector<StepReport>& reports);
// Rows of named values (a sweep's points) in aligned columns, long cells cut at 60 characters.
std::string rows_table(const std::vector<nlohmann::ordered_json>& rows, const std::vector<std::string>& columns);

}  // namespace pipesim::cli
