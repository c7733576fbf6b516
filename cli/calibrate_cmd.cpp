// `pipesim calibrate RUN.json -o calibration.json`: per-stage durations, link figures and the overlap
// slowdown of a measured run, for `pipesim simulate --calibration`.
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "common/atomic_file.hpp"
#include "traces/calibration.hpp"

namespace pipesim::cli {

void add_calibrate_command(CLI::App& app) {
  struct Args {
    std::string run, output;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("calibrate", "Turn a measured run (pipesim run --timeline) into simulator costs");
  cmd->footer("Example:\n  pipesim calibrate run.json -o calibration.json\n"
              "  pipesim simulate --calibration calibration.json --timeline predicted.json\n"
              "  pipesim compare run.json predicted.json\n\n"
              "Durations are medians over the steps after the first (a warm-up), per stage and pass.");
  cmd->add_option("run", args->run, "Timeline written by pipesim run --timeline")->required()->check(CLI::ExistingFile);
  cmd->add_option("--output,-o", args->output, "Calibration file to write (default: standard output)");
  cmd->callback([args] {
    auto calibration = calibrate(parse_run_record(read_file(args->run), args->run));
    auto text = to_json(calibration).dump(1) + "\n";
    print_or_write(text, args->output);
  });
}

}  // namespace pipesim::cli
