// `pipesim study`: the built-in study, what the README's main command runs. DeepSeek-V3 on its H800
// cluster (2048 GPUs, PP16, EP64, DP128 with ZeRO-1, FP8 GEMMs and activation caching, recomputed norms and
// MLA up-projections, 120 micro-batches of one 4096-token sequence = the 15360-sequence global batch):
// every schedule side by side, one Chrome trace each.
#include <filesystem>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/phase_table.hpp"
#include "cli/plan_options.hpp"
#include "cli/report_table.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/text.hpp"
#include "traces/chrome_trace.hpp"

namespace pipesim::cli {
namespace {

struct StudyArgs {
  std::string traces = "out/study";
  std::string schedules = "1f1b,zb-h1,zb-v,dualpipev,dualpipe";
  PlanOptions options;
  ScheduleSize size{16, 120};  // DeepSeek-V3: PP16, 120 micro-batches per step
};

void run(const StudyArgs& args) {
  auto model = load_model(args.options.model.empty() ? "deepseek-v3" : args.options.model);
  Topology topology(cluster_of(args.options));
  auto base = args.options.resolved_plan(args.size);
  std::vector<StepReport> reports;
  std::vector<std::string> failed;
  for (auto& name : split(args.schedules)) find_schedule(name);  // an unknown name is a typo: refused, listing the known
  for (auto& name : split(args.schedules)) {
    auto plan = base;
    plan.schedule = name;
    try {
      fmt::print(stderr, "study: simulating {} ...\n", plan.schedule);
      reports.push_back(simulate_step(model, topology, plan));
    } catch (const Error& e) {
      failed.push_back(fmt::format("{}: {}", plan.schedule, e.what()));
    }
  }
  if (reports.empty()) throw Error("study: no schedule could run:\n  " + fmt::format("{}", fmt::join(failed, "\n  ")));
  fmt::print("{}\n\n{}", describe_plan(reports.front(), false), step_comparison_table(reports));
  for (auto& f : failed) fmt::print("not available: {}\n", f);
  // The fastest plan that fits in memory; if none fits, the fastest, said plainly.
  auto faster = [](const StepReport& a, const StepReport& b) {
    return a.fits != b.fits ? a.fits : a.step_ns < b.step_ns;
  };
  auto best = std::min_element(reports.begin(), reports.end(), faster);
  fmt::print("\n{}: {}. Its details:\n\n{}", best->fits ? "Fastest that fits in memory" : "Fastest (none fits in memory)",
             best->plan.plan.schedule, step_report_table(*best));
  if (!args.traces.empty()) {
    std::filesystem::create_directories(args.traces);
    for (auto& r : reports)
      write_file_atomically(fmt::format("{}/{}.json", args.traces, r.plan.plan.schedule), to_chrome_trace(r.timeline));
    fmt::print("\ntraces: {}/<schedule>.json (open in https://ui.perfetto.dev or chrome://tracing)\n", args.traces);
  }
}

}  // namespace

void add_study_command(CLI::App& app) {
  auto args = std::make_shared<StudyArgs>();
  auto& p = args->options.plan;
  p.ep = 64;
  args->options.precision = "fp8";
  p.selective_recompute = true;
  auto* cmd = app.add_subcommand("study", "The built-in study: DeepSeek-V3 on 2048 H800s, every schedule compared");
  cmd->footer("Defaults reproduce DeepSeek-V3's training layout (docs/cost-model.md §5); every plan flag can change them,\n"
              "e.g. `pipesim study --microbatches 64` or `pipesim study --model llama3-70b --ep 1 --pp 8`.");
  args->size.add_options(*cmd);
  args->options.add_options(*cmd);
  cmd->add_option("--schedules", args->schedules, "Schedules to compare")->capture_default_str();
  cmd->add_option("--traces", args->traces, "Folder for one Chrome trace per schedule ('' for none)")->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace pipesim::cli
