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

// `pipesim serve`: in the program without the web server, replaces this process with `pipesim-serve`
// (serve_stub.cpp); in `pipesim-serve` itself, does nothing (serve_cmd.cpp).
void exec_serve_program(char** argv);

// `pipesim run` on a GPU: in the program built without CUDA, replaces this process with `pipesim-cuda`
// (the same commands with the CUDA device, built beside it) unless `--device cpu` was given or, for
// `--device auto`, no NVIDIA driver is loaded. Returns when there is nothing to exec (run_cmd.cpp).
void exec_cuda_program_for_run(int argc, char** argv);

// The points `pipesim sweep --vary V...` would compute, for a caller that must refuse a sweep before it
// starts (the web server); throws the sweep's Error for a malformed --vary (sweep_cmd.cpp).
std::size_t sweep_points(const std::vector<std::string>& vary);

}  // namespace pipesim::cli
