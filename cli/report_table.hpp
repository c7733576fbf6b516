// Human-readable tables of simulation results (the default output of simulate, study and sweep).
#pragma once

#include <string>
#include <vector>

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

}  // namespace pipesim::cli
