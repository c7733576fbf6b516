// Loading schedules for the CLI (see schedule_source.hpp).
#include "cli/schedule_source.hpp"

#include "cli/input_file.hpp"

#include <fmt/format.h>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/text.hpp"
#include "schedules/csv.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"

namespace pipesim::cli {

void ScheduleSource::add_options(CLI::App& cmd, bool allow_list) {
  cmd.add_option("--schedule,-s", schedule,
                 allow_list ? "Schedule name, or several separated by commas to compare (see `pipesim schedule --list`)"
                            : "Schedule name (see --list)");
  cmd.add_option("--from-csv", from_csv, "A schedule in PyTorch's CSV layout (one row per rank) instead of --schedule")
      ->check(existing_file());
  ScheduleSize::add_options(cmd);
}

std::vector<Schedule> ScheduleSource::load(bool order_checked_later) const {
  std::vector<Schedule> out;
  if (!from_csv.empty()) {
    if (!schedule.empty()) throw Error("give either --schedule or --from-csv, not both");
    out.push_back(pipesim::from_csv(read_file(from_csv), from_csv));
  } else {
    for (auto& name : schedule.empty() ? std::vector<std::string>{} : split(schedule)) {
      auto& info = find_schedule(name);
      if (virtual_stages && !info.uses_virtual_stages && schedule.find(',') == std::string::npos)
        throw Error(fmt::format("--virtual-stages applies to interleaved-1f1b only, not to '{}' (V schedules and "
                                "DualPipe always hold 2 stages per rank)",
                                name));
      require_supported(info, generator_options());
      out.push_back(info.generate(generator_options()));
    }
  }
  for (auto& s : out) order_checked_later ? validate_shape(s) : validate(s);
  return out;
}

}  // namespace pipesim::cli
