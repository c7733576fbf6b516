// Where a command's schedule comes from: the registry (--schedule, --pp, --microbatches,
// --virtual-stages) or an imported CSV (--from-csv). Shared by `schedule` and `simulate`.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "schedules/schedule.hpp"

namespace pipesim::cli {

struct ScheduleSource {
  std::string schedule;  // a name, or for `simulate` a comma-separated list
  std::string from_csv;
  int ranks = 4;
  int microbatches = 8;
  std::optional<int> virtual_stages;
  CLI::Option* microbatches_option = nullptr;
  CLI::Option* ranks_option = nullptr;
  bool ranks_given() const { return ranks_option && ranks_option->count() > 0; }
  bool microbatches_given() const { return microbatches_option && microbatches_option->count() > 0; }

  void add_options(CLI::App& cmd, bool allow_list);
  // The named schedules (or the imported one), validated. Throws Error naming the bad flag.
  std::vector<Schedule> load() const;
};

}  // namespace pipesim::cli
