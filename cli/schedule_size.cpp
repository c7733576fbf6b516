// The schedule-size flags (see schedule_size.hpp).
#include "cli/schedule_size.hpp"

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim::cli {

void ScheduleSize::add_options(CLI::App& cmd) {
  ranks_option = cmd.add_option("--pp", ranks, "Pipeline ranks (devices); V schedules and DualPipe run 2 stages per rank")
                     ->capture_default_str();
  microbatches_option =
      cmd.add_option("--microbatches,-m", microbatches, "Micro-batches per step per pipeline")->capture_default_str();
  cmd.add_option("--virtual-stages,-v", virtual_stages,
                 fmt::format("Model chunks per rank for interleaved-1f1b (default {})", kDefaultVirtualStages));
}

void ScheduleSize::apply(Plan& plan) const {
  plan.pp = ranks;
  plan.microbatches = microbatches_given() || plan.global_batch == 0 ? microbatches : 0;
  plan.virtual_stages = virtual_stages.value_or(kDefaultVirtualStages);
}

const char* flag_of(const std::string& field) {
  if (field == "ranks") return "--pp";
  if (field == "microbatches") return "--microbatches";
  if (field == "virtual_stages") return "--virtual-stages";
  return "--schedule";
}

void require_supported(const ScheduleInfo& info, const GeneratorOptions& options) {
  if (auto problem = info.supports(options))
    throw Error(fmt::format("{}: {}: {}", flag_of(problem->field), info.name, problem->message));
}

}  // namespace pipesim::cli
