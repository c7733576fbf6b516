// `pipesim calibrate RUN.json -o calibration.json`: per-stage durations, link figures and the overlap
// slowdown of a measured run, for `pipesim simulate --calibration`.
#include <algorithm>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/input_file.hpp"
#include "cli/phase_table.hpp"
#include "common/error.hpp"
#include "sim/profile_fit.hpp"
#include "sim/run_profile.hpp"
#include "common/atomic_file.hpp"
#include "traces/calibration.hpp"

namespace pipesim::cli {
namespace {

// FNV-1a 64 of the file's bytes: names the exact trace a calibrated figure comes from.
std::string file_hash(const std::string& path) {
  auto data = read_file(path);
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return fmt::format("fnv1a64 {:016x}", h);
}

// Each fitted figure's residual per phase, on standard error (standard output may be the profile).
void print_fit(const ProfileFit& fit) {
  fmt::print(stderr, "{:<20} {:<14} {:>12} {:>12} {:>9}\n", "figure", "phase", "measured us", "fitted us", "residual");
  for (auto& row : fit.rows)
    fmt::print(stderr, "{:<20} {:<14} {:>12.1f} {:>12.1f} {:>+8.1f}%\n", row.figure, row.phase, row.measured_ns / 1e3,
               row.fitted_ns / 1e3, 100 * row.residual());
}

void print_checks(const std::vector<PriceCheck>& checks) {
  fmt::print(stderr, "{:<6} {:<11} {:>12} {:>12} {:>8} {:>11} {:>6} {:>6} {:>6} {:>6}\n", "stage", "pass", "measured us",
             "priced us", "error", "in kernels", "gemm", "attn", "memory", "comm");
  for (auto& c : checks)
    fmt::print(stderr, "{:<6} {:<11} {:>12.1f} {:>12.1f} {:>+7.1f}% {:>10.0f}% {:>5.0f}% {:>5.0f}% {:>5.0f}% {:>5.0f}%\n",
               c.stage, op_name(c.op), c.measured_ns / 1e3, c.priced_ns / 1e3, 100 * c.error(), 100 * c.kernel_share,
               100 * c.gemm_share, 100 * c.attention_share, 100 * c.memory_share, 100 * c.comm_share);
}

// A measured run's record; a predicted timeline is refused.
RunRecord read_measured(const std::string& path) {
  auto record = parse_run_record(read_file(path), path);
  if (record.source == "predicted")
    throw Error(fmt::format("{}: a predicted timeline (from `simulate --timeline`); calibrate reads measured runs "
                            "(`pipesim run --timeline`, `pipesim import -o`)",
                            path));
  return record;
}

// The hardware profile fitted from `run`'s kernels and those of the `with` runs, over `base`, named after the
// run's device; its residuals printed. What is returned loads back (checked here, by field).
HwProfile fit_run_profile(const RunRecord& run, const std::string& path, const std::vector<std::string>& with,
                          const HwProfile& base) {
  std::vector<RunRecord> others;
  for (auto& other : with) {
    if (other == path || std::count(with.begin(), with.end(), other) > 1)
      throw Error(fmt::format("calibrate: --with {} is given twice; each run joins the fit once", other));
    others.push_back(read_measured(other));
  }
  std::vector<SourcedRun> runs{{&run, fmt::format("{} ({})", path, file_hash(path))}};
  for (std::size_t i = 0; i < others.size(); ++i)
    runs.push_back({&others[i], fmt::format("{} ({})", with[i], file_hash(with[i]))});
  auto fit = pipesim::fit_run_profile(runs, base, 0);
  fit.profile.name = "run-calibrated";
  // The device the kernels ran on, as the run names it (the GPU field is otherwise the base profile's).
  if (run.workload.contains("device") && run.workload["device"].is_string())
    fit.profile.gpu = run.workload["device"].get<std::string>();
  print_fit(fit);
  try {
    parse_hw_profile(to_json(fit.profile).dump(), "the fitted profile");
  } catch (const Error& e) {
    throw Error(fmt::format("calibrate: the profile fitted from {} is out of range: {}", path, e.what()));
  }
  return fit.profile;
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  struct Args {
    std::string run, output, profile_out;
    bool from_kernels = false;
    std::vector<std::string> traces, with;
    PlanOptions plan;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "calibrate", "Turn a measured run into simulator costs, or a profiler trace into a hardware profile");
  cmd->footer("Example:\n  pipesim calibrate run.json -o calibration.json\n"
              "  pipesim simulate --calibration calibration.json --timeline predicted.json\n"
              "  pipesim compare run.json predicted.json\n\n"
              "Durations are medians over the steps after the first (a warm-up), per stage and pass.\n\n"
              "A hardware profile from a PyTorch profiler trace (kernel times only, never a step time):\n"
              "  pipesim calibrate --trace train.json --model deepseek-v3 --ep 64 --precision fp8 \\\n"
              "      --selective-recompute -o h800.json      # prints each fitted figure's residual\n"
              "  pipesim simulate --phases --model deepseek-v3 --ep 64 --precision fp8 --hw-profile h800.json\n"
              "See docs/hardware-profiles.md.\n\n"
              "A hardware profile from a run's own kernels (each tagged with its operator's work; docs/gpu-runtime.md "
              "§10):\n"
              "  pipesim calibrate run.json --hw-profile-out run-profile.json   # prints each fitted figure's residual\n"
              "  pipesim calibrate small.json --with large.json --hw-profile-out p.json   # several sizes: GEMM knee\n"
              "  pipesim calibrate run.json --from-kernels -o priced.json       # durations from kernel rates alone\n"
              "  pipesim simulate --calibration priced.json --timeline predicted.json\n"
              "Figures the kernels cannot measure (GEMM tables of other math than the run's: run --gemm-math; "
              "communication) keep the --cluster's or "
              "--hw-profile's.");
  cmd->add_option("run", args->run, "Timeline written by pipesim run --timeline")->check(existing_file());
  cmd->add_option("--trace", args->traces,
                  "PyTorch profiler trace(s) of DeepSeek-style annotated phases: writes a hardware profile instead, "
                  "fitted from kernel times against --model under the plan flags")
      ->check(existing_file());
  cmd->add_option("--hw-profile-out", args->profile_out,
                  "Also fit a hardware profile (GEMM, attention, memory rates, launch gap) from the run's operator-tagged "
                  "kernels and write it here");
  cmd->add_option("--with", args->with,
                  "More measured runs (other sizes) whose kernels join the hardware-profile fit: GEMMs of several "
                  "smallest dimensions give the GEMM tables their knee, which one size cannot")
      ->check(existing_file());
  cmd->add_flag("--from-kernels", args->from_kernels,
                "Durations priced from kernel rates (the profile fitted from the run's kernels, or --hw-profile) "
                "instead of the measured action times; prints measured against priced per stage and pass");
  args->plan.add_options(*cmd);
  cmd->add_option("--output,-o", args->output, "Calibration file to write (default: standard output)");
  cmd->callback([args] {
    if (!args->traces.empty()) {
      if (!args->run.empty()) throw Error("calibrate: give a run timeline or --trace, not both");
      auto cluster = cluster_of(args->plan);
      auto phases = model_phases(args->plan, cluster);
      auto run = import_for_phases(args->traces);
      std::string source;
      for (auto& f : args->traces) source += (source.empty() ? "" : ", ") + fmt::format("{} ({})", f, file_hash(f));
      auto fit = fit_profile(run, phases, cluster.profile, parse_precision(args->plan.precision, "--precision") == Precision::FP8,
                             cluster.gpu.hbm_GBps, source);
      fit.profile.name = cluster.gpu.name + "-calibrated";
      fit.profile.gpu = cluster.gpu.name;
      auto text = to_json(fit.profile).dump(1) + "\n";
      print_or_write(text, args->output);
      print_fit(fit);
      return;
    }
    if (args->run.empty()) throw Error("calibrate: give a run timeline (pipesim run --timeline) or --trace FILE");
    auto record = read_measured(args->run);
    bool fit = !args->profile_out.empty() || (args->from_kernels && args->plan.hw_profile.empty());
    if (!args->with.empty() && !fit)
      throw Error("calibrate: --with adds runs to the hardware-profile fit; give --hw-profile-out FILE, or --from-kernels "
                  "without --hw-profile");
    if (fit || args->from_kernels) {
      auto cluster = cluster_of(args->plan);
      HwProfile profile = cluster.profile;  // --hw-profile's when given
      if (fit) {
        auto fitted = fit_run_profile(record, args->run, args->with, cluster.profile);
        if (!args->profile_out.empty()) print_or_write(to_json(fitted).dump(1) + "\n", args->profile_out);
        if (args->plan.hw_profile.empty()) profile = fitted;
      }
      if (args->from_kernels) {
        auto priced = price_run(record, profile);
        print_checks(priced.checks);
        record = std::move(priced.run);
      }
    }
    auto calibration = calibrate(record);
    auto text = to_json(calibration).dump(1) + "\n";
    print_or_write(text, args->output);
  });
}

}  // namespace pipesim::cli
