// `pipesim serve` in the program without the web server: main() hands the process to `pipesim-serve`
// (cli/sibling.hpp), built beside it; this command is what is left when that program is missing.
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/sibling.hpp"
#include "common/error.hpp"

namespace pipesim::cli {

void exec_serve_program(char** argv) { exec_sibling("pipesim-serve", argv); }

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Web UI: a page where a plan becomes a timeline, a table and a Pareto plot");
  cmd->allow_extras();
  cmd->callback([] {
    throw Error("serve: the web server is the program pipesim-serve, built beside pipesim, and it is not there; "
                "build it (scripts/build) or run it from the build folder (build/cli/)");
  });
}

}  // namespace pipesim::cli
