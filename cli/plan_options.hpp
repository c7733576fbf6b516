// Command-line options for a model on a cluster (`simulate --model`, `sweep`, `study`): the plan fields,
// stragglers, and the tables and JSON a StepReport prints as.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sim/step.hpp"

namespace pipesim::cli {

struct PlanOptions {
  std::string model, cluster = "deepseek-h800";
  Plan plan;
  std::string layers_per_stage;          // "4,4,4,3"
  std::vector<std::string> stragglers;   // "GPU=FACTOR"

  // Adds the plan flags; --pp, --microbatches and --virtual-stages come from the caller's schedule options.
  void add_options(CLI::App& cmd, bool with_schedule_size);
  Plan resolved_plan() const;            // parses layers_per_stage
  std::vector<double> slowdowns(int gpus) const;
};

std::string describe_plan(const StepReport& r, bool with_schedule = true);
std::string step_report_table(const StepReport& r);
std::string step_comparison_table(const std::vector<StepReport>& reports);
nlohmann::ordered_json step_report_json(const StepReport& r);

}  // namespace pipesim::cli
