// `pipesim schedule`: generate a schedule from the registry (or import a PyTorch-layout CSV), validate
// it, optionally lower it, and print it as a grid, text, CSV or JSON; `--list` names the schedules and
// `--compare` prints every schedule side by side for one size.
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "cli/schedule_source.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "schedules/csv.hpp"
#include "schedules/grid.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/summary.hpp"
#include "schedules/validate.hpp"

namespace pipesim::cli {
namespace {

struct ScheduleArgs {
  ScheduleSource source;
  std::string format = "grid";
  std::string output;
  bool with_comms = false;
  bool list = false;
  bool compare = false;
};

std::string render(const Schedule& s, const std::string& format) {
  if (format == "grid") return format_grid(s);
  if (format == "text") return to_text(s);
  if (format == "csv") return to_csv(s);
  // One key per line and one program per line: readable, diffable, and still plain JSON.
  auto json = to_json(s);
  std::string out = "{";
  bool first = true;
  for (auto& [key, value] : json.items()) {
    out += fmt::format("{}\n \"{}\": ", first ? "" : ",", key);
    first = false;
    if (key != "programs") {
      out += value.dump();
      continue;
    }
    out += "[";
    for (std::size_t r = 0; r < value.size(); ++r) out += fmt::format("{}\n  {}", r ? "," : "", value[r].dump());
    out += "\n ]";
  }
  return out + "\n}\n";
}

std::string list_schedules() {
  std::string out;
  for (auto& info : schedule_registry()) out += fmt::format("{:<18} {}\n", info.name, info.description);
  return out;
}

std::string compare_schedules(const ScheduleArgs& args) {
  std::string out = fmt::format("Schedules for --pp {} --microbatches {} (interleaved-1f1b: --virtual-stages {})\n\n",
                                args.source.ranks, args.source.microbatches, args.source.generator_options().virtual_stages);
  std::string table = fmt::format("{:<17} {:>6} {:>11} {:>8} {:>10} {:>11}  {}\n", "schedule", "stages",
                                  "params/rank", "actions", "F&B pairs", "split I/W", "peak in-flight forwards by rank");
  for (auto& info : schedule_registry()) {
    try {
      require_supported(info, args.source.generator_options());
      auto s = info.generate(args.source.generator_options());
      validate(s);
      out += fmt::format("== {}: {}\n{}\n", info.name, info.description, format_grid(s));
      auto sum = summarize(s);
      table += fmt::format("{:<17} {:>6} {:>11} {:>8} {:>10} {:>11}  {:.3g}\n", info.name, sum.stages,
                           fmt::format("{:.2g}x", sum.parameter_copies), sum.compute_actions, sum.overlapped_pairs,
                           sum.split_backwards, fmt::join(sum.peak_in_flight, " "));
    } catch (const Error& e) {
      table += fmt::format("{:<17} not available at this size: {}\n", info.name, e.what());
    }
  }
  return out +
         "Comparison (params and peak in-flight forwards in 1F1B stages, i.e. 1/pp of the model: a ZB-V chunk\n"
         "counts 1/2, an interleaved chunk 1/v)\n" +
         table;
}

void run(const ScheduleArgs& args) {
  std::string text;
  if (args.list) {
    text = list_schedules();
  } else if (args.compare) {
    text = compare_schedules(args);
  } else {
    if (args.source.schedule.empty() && args.source.from_csv.empty())
      throw Error("say what to print: --schedule NAME, --from-csv FILE, --list or --compare (see --help)");
    if (args.source.schedule.find(',') != std::string::npos)
      throw Error("--schedule: give one schedule name here (`pipesim simulate` compares several)");
    Progress progress("schedule", expected_actions(route_length_of(args.source), args.source.microbatches, args.with_comms));
    auto s = args.source.load().front();
    progress.done("generated and validated");
    if (args.with_comms && !s.lowered()) {
      s = lower(s);
      validate(s);
      progress.done("lowered");
    }
    text = render(s, args.format);
    progress.done("rendered");
  }
  print_or_write(text, args.output);
}

}  // namespace

void add_schedule_command(CLI::App& app) {
  auto args = std::make_shared<ScheduleArgs>();
  auto* cmd = app.add_subcommand("schedule", "Generate, import, validate and print a pipeline schedule");
  cmd->footer(
      "Examples:\n"
      "  pipesim schedule --list\n"
      "  pipesim schedule --schedule 1f1b --pp 4 --microbatches 8\n"
      "  pipesim schedule --schedule interleaved-1f1b --pp 4 --microbatches 8 --virtual-stages 2 --format json\n"
      "  pipesim schedule --schedule dualpipe --pp 8 --microbatches 20 --with-comms --format csv -o dp.csv\n"
      "  pipesim schedule --from-csv dp.csv              # validate and print an imported schedule\n"
      "  pipesim schedule --compare --pp 4 --microbatches 8\n\n"
      "Actions use PyTorch pipelining's text form: STAGE OP MICROBATCH, e.g. 0F3 (forward), 1I2 (backward for\n"
      "input), 1W2 (backward for weights), 0B1 (full backward), 2SEND_F1 / 2RECV_B0 (communication), and\n"
      "(0F3;7B1)OVERLAP_F_B (an overlapped forward&backward pair). The grid shows row k = k-th action per rank.\n"
      "Exit codes: 0 ok, 2 bad input or invalid schedule (the message says which constraint failed).");
  args->source.add_options(*cmd, false);
  cmd->add_option("--format,-f", args->format, "Output format")
      ->check(CLI::IsMember({"grid", "text", "csv", "json"}))
      ->capture_default_str();
  cmd->add_option("--output,-o", args->output, "Write to FILE (atomically) instead of standard output");
  cmd->add_flag("--with-comms", args->with_comms, "Lower first: insert SEND_F/RECV_F/SEND_B/RECV_B actions");
  cmd->add_flag("--list", args->list, "List the schedules with a one-line description");
  cmd->add_flag("--compare", args->compare, "Print every schedule's grid and a comparison table for --pp/--microbatches");
  cmd->callback([args] { run(*args); });
}

}  // namespace pipesim::cli
