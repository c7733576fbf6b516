// `pipesim import TRACE...`: PyTorch profiler (Kineto) traces, one per rank, into pipesim's timeline file
// (for compare and calibrate), an operator table, and a report of where GPU time went per phase and
// operator class. Nothing is written unless every input reads cleanly.
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/input_file.hpp"
#include "cli/phase_table.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "traces/import_report.hpp"
#include "traces/trace_import.hpp"

namespace pipesim::cli {
namespace {

// Files as given; a folder stands for its *.json and *.json.gz files, in name order.
std::vector<std::string> trace_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (auto& input : inputs) {
    std::filesystem::path p(input);
    if (!std::filesystem::is_directory(p)) {
      if (!std::filesystem::exists(p)) throw Error(fmt::format("import: '{}' does not exist", input));
      files.push_back(input);
      continue;
    }
    std::vector<std::string> found;
    for (auto& entry : std::filesystem::directory_iterator(p)) {
      auto name = entry.path().filename().string();
      if (entry.is_regular_file() && (name.ends_with(".json") || name.ends_with(".json.gz")))
        found.push_back(entry.path().string());
    }
    if (found.empty()) throw Error(fmt::format("import: folder '{}' holds no *.json or *.json.gz trace", input));
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

}  // namespace

void add_import_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> inputs, actions;
    std::string timeline, ops, rules, format = "table";
    bool report = false;
    PlanOptions plan;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("import", "Import PyTorch profiler (Kineto) traces: timeline, operator table, report");
  cmd->footer(
      "Examples:\n"
      "  pipesim import traces/ -o run.json            # one *.pt.trace.json[.gz] per rank -> timeline file\n"
      "  pipesim compare run.json predicted.json        # then, like a runtime run\n"
      "  pipesim import train.json --report             # where GPU time went, per phase and operator class\n"
      "  pipesim import train.json --action '^1F1B$=FB' --ops ops.csv\n\n"
      "Kernels are attributed to the innermost user annotation (torch.profiler.record_function) open when\n"
      "they were launched. An annotation names a pipeline action in pipesim's spelling (0F3, 1I2, 2W0, 0B1),\n"
      "as PyTorch pipelining's PP:0F3, or by --action REGEX=KIND (capture groups: stage, micro-batch).\n"
      "ProfilerStep#N annotations separate steps. Ranks come from distributedInfo, else the file name.\n"
      "Kernel classes come from a table of name patterns (--rules, default built in); kernels that match no\n"
      "rule are listed in the report. With --model and the plan flags (--ep, --precision, ...), the report adds\n"
      "each annotated phase's achieved GEMM/attention TFLOP/s and memory/all-to-all GB/s against the model's counts.\n"
      "See docs/trace-import.md.");
  cmd->add_option("traces", args->inputs, "Trace files (plain or gzip) or folders of them, one trace per rank")
      ->required();
  cmd->add_option("--output,-o", args->timeline, "Timeline file to write (needs annotations that name actions)");
  cmd->add_option("--ops", args->ops, "Operator table to write (CSV: rank,phase,class,kernels,time_us)");
  cmd->add_option("--action", args->actions, "REGEX=KIND: annotations matching REGEX are actions of KIND (F, I, W, B, FB)");
  cmd->add_option("--rules", args->rules, "Kernel classification rules (JSON, the schema of the built-in table)")
      ->check(existing_file());
  cmd->add_flag("--report", args->report, "Print the report (the default when no output file is given)");
  args->plan.add_options(*cmd);
  cmd->add_option("--format,-f", args->format, "Report as table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->callback([args] {
    ImportOptions options;
    if (!args->rules.empty()) options.rules = parse_kernel_rules(read_file(args->rules), args->rules);
    for (auto& a : args->actions) options.actions.push_back(parse_action_pattern(a));
    std::vector<KinetoTrace> traces;
    for (auto& file : trace_files(args->inputs)) traces.push_back(read_kineto(file));
    auto run = import_traces(std::move(traces), options);
    // Everything is computed before anything is written.
    std::string timeline = args->timeline.empty() ? "" : to_json_text(to_run_record(run));
    std::string ops = args->ops.empty() ? "" : operator_table_csv(run);
    bool report = args->report || (args->timeline.empty() && args->ops.empty());
    bool json = args->format == "json";
    std::string text;
    if (report) {
      std::string achieved;
      if (!args->plan.model.empty()) {
        auto cluster = cluster_of(args->plan);
        achieved = achieved_rates(model_phases(args->plan, cluster), run, json);
      }
      auto summary = summarize(run);
      if (json) {
        auto j = report_json(run, summary);
        if (!achieved.empty()) j["achieved"] = nlohmann::ordered_json::parse(achieved);
        text = j.dump(1) + "\n";
      } else {
        text = report_text(run, summary) + (achieved.empty() ? "" : "\n" + achieved);
      }
    }
    write_files_atomically({{timeline.empty() ? "" : args->timeline, timeline}, {ops.empty() ? "" : args->ops, ops}});
    if (!run.unmatched.empty() && !report)
      fmt::print(stderr, "pipesim: note: {} kernel name(s) matched no classification rule (see --report)\n",
                 run.unmatched.size());
    fmt::print("{}", text);
  });
}

}  // namespace pipesim::cli
