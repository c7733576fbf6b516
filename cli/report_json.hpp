// JSON reports of simulation results (`--format json`), the same objects the web API will return.
#pragma once

#include <nlohmann/json.hpp>

#include "schedules/schedule.hpp"
#include "sim/step.hpp"
#include "traces/metrics.hpp"

namespace pipesim::cli {

nlohmann::ordered_json schedule_metrics_json(const Schedule& schedule, const Metrics& metrics);
nlohmann::ordered_json step_report_json(const StepReport& r);

}  // namespace pipesim::cli
