// pipesim: predicts, runs and explains pipeline-parallel training. This file is the table of contents:
// one line per subcommand; errors become exit codes here and only here (2: bad input, 1: internal).
#include <algorithm>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "common/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pipesim: predicts, runs and explains pipeline-parallel training. Schedules are data: generate and\n"
               "validate them, simulate them on a model and cluster, sweep plans, run them for real over MPI, and\n"
               "calibrate the simulator against the run.\n"
               "Run `pipesim <command> --help` for each command."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pipesim 0.1");
  pipesim::cli::add_schedule_command(app);  // generate, import, validate and print schedules
  pipesim::cli::add_simulate_command(app);  // play schedules against costs: makespan, bubbles, memory, traces
  pipesim::cli::add_sweep_command(app);     // what-if studies over plan fields, Pareto front
  pipesim::cli::add_study_command(app);     // the built-in DeepSeek-V3 study
  pipesim::cli::add_run_command(app);       // execute a schedule for real over MPI, timed
  pipesim::cli::add_calibrate_command(app); // measured run -> simulator costs
  pipesim::cli::add_compare_command(app);   // measured run vs prediction
  pipesim::cli::add_import_command(app);    // PyTorch profiler traces -> timeline, operator table, report
  pipesim::cli::add_validate_command(app);  // public, cited numbers vs predictions
  pipesim::cli::add_serve_command(app);     // the web UI and its JSON API
  // A first word that is no command and no option: name it and list the commands (CLI11 would only say that
  // a subcommand is required).
  std::vector<std::string> names;
  for (auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  if (argc > 1 && argv[1][0] != '-' && std::find(names.begin(), names.end(), argv[1]) == names.end()) {
    fmt::print(stderr, "pipesim: error: unknown command '{}'; the commands are: {}\n", argv[1], fmt::join(names, ", "));
    return 2;
  }
  // Before anything starts (MPI, threads): a GPU run goes to the program that links CUDA, the web server to
  // the one that links cpp-httplib (cli/sibling.hpp).
  if (argc > 1 && std::string_view(argv[1]) == "run") pipesim::cli::exec_cuda_program_for_run(argc, argv);
  if (argc > 1 && std::string_view(argv[1]) == "serve") pipesim::cli::exec_serve_program(argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const pipesim::Error& e) {
    // An empty message: another process of the same run already said why (pipesim run under mpirun).
    if (*e.what()) fmt::print(stderr, "pipesim: error: {}\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "pipesim: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
