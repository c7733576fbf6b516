// Registration of the `pipesim` subcommands; each lives in its own file.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pipesim::cli {

void add_schedule_command(CLI::App& app);
void add_simulate_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_study_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_import_command(CLI::App& app);
void add_validate_command(CLI::App& app);
void add_serve_command(CLI::App& app);

// The points `pipesim sweep --vary V...` would compute, for a caller that must refuse a sweep before it
// starts (the web server); throws the sweep's Error for a malformed --vary (sweep_cmd.cpp).
std::size_t sweep_points(const std::vector<std::string>& vary);

}  // namespace pipesim::cli
