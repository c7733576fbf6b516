// Where a command's schedule comes from: the registry (--schedule, --pp, --microbatches,
// --virtual-stages) or an imported CSV (--from-csv). Shared by `schedule`, `simulate` and `run`.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/schedule_size.hpp"
#include "schedules/schedule.hpp"

namespace pipesim::cli {

struct ScheduleSource : ScheduleSize {
  std::string schedule;  // a name, or for `simulate` a comma-separated list
  std::string from_csv;

  void add_options(CLI::App& cmd, bool allow_list);
  // The named schedules (or the imported one), validated. Throws Error naming the bad flag.
  std::vector<Schedule> load() const;
};

}  // namespace pipesim::cli
