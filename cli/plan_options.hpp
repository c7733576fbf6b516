// Command-line options for a model on a cluster (`simulate --model`, `sweep`, `study`): the plan fields
// and stragglers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/schedule_size.hpp"
#include "sim/step.hpp"

namespace pipesim::cli {

struct PlanOptions {
  std::string model, cluster = "deepseek-h800";
  Plan plan;
  std::string layers_per_stage;          // "4,4,4,3"
  std::string precision = "bf16", placement = "tp-dp-pp", adam_moments = "auto",
              flops_convention = "pipesim";
  std::vector<std::string> stragglers;   // "GPU=FACTOR"
  std::string hw_profile;                // --hw-profile: a preset or file replacing the cluster's
  int nodes = 0;                         // --nodes: resize the cluster (0: as the preset says)

  // Adds the plan flags; --pp, --microbatches and --virtual-stages are the caller's ScheduleSize.
  void add_options(CLI::App& cmd);
  Plan resolved_plan(const ScheduleSize& size) const;  // parses the text flags, sizes the schedule
  std::vector<double> slowdowns(int gpus) const;
};


}  // namespace pipesim::cli
