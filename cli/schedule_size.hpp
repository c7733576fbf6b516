// The one binding of --pp, --microbatches/-m and --virtual-stages/-v, shared by every command that sizes
// a schedule (schedule, simulate, run, sweep, study): the same flags, help and defaults everywhere, and the
// library's size problems ("microbatches 5 must be a multiple of ranks 4") reported with the flag's name.
#pragma once

#include <optional>

#include <CLI/CLI.hpp>

#include "schedules/registry.hpp"
#include "sim/plan.hpp"

namespace pipesim::cli {

struct ScheduleSize {
  // A command's defaults: `schedule` and `simulate` 4 ranks x 8 micro-batches; `study` DeepSeek-V3's.
  explicit ScheduleSize(int default_ranks = 4, int default_microbatches = 8)
      : ranks(default_ranks), microbatches(default_microbatches) {}

  int ranks;         // --pp
  int microbatches;  // --microbatches
  std::optional<int> virtual_stages;
  CLI::Option* ranks_option = nullptr;
  CLI::Option* microbatches_option = nullptr;

  void add_options(CLI::App& cmd);
  bool ranks_given() const { return ranks_option && ranks_option->count() > 0; }
  bool microbatches_given() const { return microbatches_option && microbatches_option->count() > 0; }
  GeneratorOptions generator_options() const {
    return {ranks, microbatches, virtual_stages.value_or(kDefaultVirtualStages)};
  }
  // Sizes a plan; without -m the plan derives its micro-batches from --global-batch when that is given.
  void apply(Plan& plan) const;
};

// The flag a GeneratorOptions field is set by ("ranks" -> "--pp").
const char* flag_of(const std::string& field);
// Throws Error "<flag>: <schedule>: <message>" when `info` does not support `options`.
void require_supported(const ScheduleInfo& info, const GeneratorOptions& options);

}  // namespace pipesim::cli
