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
  // The named schedules (or the imported one), validated. Throws Error naming the bad flag. With
  // `order_checked_later`, only validate_shape(): the caller simulates them at once with
  // Validation::ShapeDone, which checks the passes' placement and order as it plays (simulate's metrics
  // path).
  std::vector<Schedule> load(bool order_checked_later = false) const;
};

}  // namespace pipesim::cli
