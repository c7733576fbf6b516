// `pipesim simulate`: plays one or more schedules against costs in the discrete-event engine and reports
// makespan, bubble rate, per-rank busy/idle/exposed communication and peak activations, as a table or
// JSON, and optionally a Chrome trace.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/input_file.hpp"
#include "cli/phase_table.hpp"
#include "cli/plan_options.hpp"
#include "cli/progress.hpp"
#include "cli/report_json.hpp"
#include "cli/report_table.hpp"
#include "cli/schedule_source.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "common/units.hpp"
#include "schedules/registry.hpp"
#include "sim/engine.hpp"
#include "traces/calibration.hpp"
#include "traces/chrome_trace.hpp"
#include "traces/timeline_file.hpp"
#include "traces/metrics.hpp"

namespace pipesim::cli {
namespace {

struct SimulateArgs {
  ScheduleSource source;
  PlanOptions model;
  std::string cost = "F=1ms,I=1ms,W=0.5ms";
  std::string cost_file;
  std::optional<std::string> p2p_latency, p2p_bandwidth, activation_bytes, activation_memory;
  std::optional<double> w_memory_fraction;
  bool cost_per_rank = false;
  std::string format = "table";
  std::string trace;
  std::string output;
  std::string calibration;
  std::string timeline;
  bool phases = false;
  std::vector<std::string> against;
  int pair_layers = 0;
};

CostSpec build_costs(const SimulateArgs& args, const Schedule& s) {
  auto costs = uniform_costs(args.cost, s.stages, s.ranks);
  if (args.cost_per_rank) {
    // --cost is for 1/pp of the model; a chunk on a route of n stages is pp/n of that.
    auto scale = [](std::int64_t& ns, double share) {
      if (ns > 0) ns = std::max<std::int64_t>(1, std::llround(static_cast<double>(ns) * share));
    };
    for (int st = 0; st < s.stages; ++st) {
      auto& stage = costs.stages[static_cast<std::size_t>(st)];
      double share = s.chunk_share(st);
      for (auto* ns : {&stage.F_ns, &stage.I_ns, &stage.W_ns}) scale(*ns, share);
      for (auto* ns : {&stage.B_ns, &stage.FB_ns})
        if (*ns) scale(**ns, share);
    }
  }
  if (!args.cost_file.empty()) {
    auto file = parse_json(read_file(args.cost_file), args.cost_file);
    apply_cost_file(costs, JsonReader(file, args.cost_file));
  }
  if (args.p2p_latency) costs.p2p.latency_ns = parse_duration_ns(*args.p2p_latency, "--p2p-latency");
  if (args.p2p_bandwidth)
    costs.p2p.bandwidth_bytes_per_ns = parse_bandwidth_bytes_per_ns(*args.p2p_bandwidth, "--p2p-bandwidth");
  for (auto& stage : costs.stages) {
    if (args.activation_bytes) stage.activation_bytes = parse_bytes(*args.activation_bytes, "--activation-bytes");
    if (args.activation_memory) stage.activation_memory = parse_bytes(*args.activation_memory, "--activation-memory");
  }
  if (args.w_memory_fraction) costs.w_memory_fraction = *args.w_memory_fraction;
  return costs;
}

std::string trace_path(const std::string& path, const std::string& schedule, bool many) {
  if (!many) return path;
  auto dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return path + "-" + schedule;
  return path.substr(0, dot) + "-" + schedule + path.substr(dot);
}

// A model on a cluster: every schedule named runs the whole step (pipeline + data parallel).
void run_model(const SimulateArgs& args) {
  if (!args.source.from_csv.empty()) throw Error("--from-csv with --model is not supported yet; name a --schedule");
  auto model = load_model(args.model.model);
  Topology topology(cluster_of(args.model));
  auto base = args.model.resolved_plan(args.source);
  auto slowdowns = args.model.slowdowns(topology.spec().total_gpus());
  std::vector<StepReport> reports;
  std::string names = args.source.schedule.empty() ? "1f1b" : args.source.schedule;
  for (auto& name : split(names)) {
    auto plan = base;
    plan.schedule = name;
    reports.push_back(simulate_step(model, topology, plan, slowdowns));
  }
  std::string text;
  if (args.format == "json") {
    auto all = nlohmann::ordered_json::array();
    for (auto& r : reports) all.push_back(step_report_json(r));
    text = (reports.size() == 1 ? all[0] : all).dump(1) + "\n";
  } else if (reports.size() == 1) {
    text = step_report_table(reports[0]);
  } else {
    text = describe_plan(reports[0], false) + "\n" + step_comparison_table(reports);
  }
  for (auto& r : reports)
    if (!args.trace.empty())
      write_file_atomically(trace_path(args.trace, r.plan.plan.schedule, reports.size() > 1), to_chrome_trace(r.timeline));
  print_or_write(text, args.output);
}

// A measured run's calibration: the lowered schedule the run executed, its durations and links.
void run_calibrated(const SimulateArgs& args) {
  auto calibration = parse_calibration(read_file(args.calibration), args.calibration);
  // By default the run's own lowered programs replay (a CSV schedule included); schedule or size flags ask
  // what the same stages would do under another schedule, sized like the run unless the flags say otherwise.
  auto s = calibration.schedule;
  auto source = args.source;
  if (!source.schedule.empty() || !source.from_csv.empty() || source.ranks_given() || source.microbatches_given() ||
      source.virtual_stages) {
    if (source.schedule.empty() && source.from_csv.empty()) source.schedule = s.name;
    if (!source.ranks_given()) source.ranks = s.ranks;
    if (!source.microbatches_given()) source.microbatches = s.microbatches;
    if (!source.virtual_stages && source.from_csv.empty() && find_schedule(source.schedule).uses_virtual_stages)
      source.virtual_stages = s.stages / s.ranks;
    s = source.load().front();
    if (s.stages != calibration.schedule.stages)
      throw Error(fmt::format("{}: calibrated for {} stages, but this schedule has {}", args.calibration,
                              calibration.schedule.stages, s.stages));
  }
  auto timeline = simulate(s, calibrated_costs(calibration, s.ranks));
  auto metrics = compute_metrics(timeline);
  if (!args.timeline.empty()) {
    RunRecord record;
    record.schedule = s;
    record.source = "predicted";
    record.workload = {{"calibration", args.calibration}};
    record.links = calibration.links;
    record.steps = {timeline.spans};
    write_file_atomically(args.timeline, to_json_text(record));
  }
  if (!args.trace.empty()) write_file_atomically(args.trace, to_chrome_trace(timeline));
  auto text = args.format == "json" ? schedule_metrics_json(s, metrics).dump(1) + "\n" : schedule_metrics_table(s, metrics);
  print_or_write(text, args.output);
}

void run(const SimulateArgs& args) {
  if (!args.model.model.empty()) return run_model(args);
  if (!args.calibration.empty()) return run_calibrated(args);
  if (args.source.schedule.empty() && args.source.from_csv.empty())
    throw Error("say what to simulate: --schedule NAME[,NAME...] or --from-csv FILE (see --help)");
  // Without a trace or a timeline to write only the metrics are kept, and the metrics pass checks the order
  // of the passes as it plays them (docs/performance.md §3); a trace or timeline plays the lowered schedule.
  bool metrics_only = args.timeline.empty() && args.trace.empty();
  Progress progress("simulate", expected_actions(route_length_of(args.source), args.source.microbatches, !metrics_only));
  auto schedules = args.source.load(metrics_only);
  progress.done(metrics_only ? "generated (the order of passes is checked as they are simulated)" : "generated and validated");
  std::vector<Metrics> metrics;
  std::vector<std::pair<std::string, std::string>> traces;
  if (!args.timeline.empty() && schedules.size() > 1)
    throw Error("--timeline writes one schedule's timeline; give one --schedule");
  for (auto& s : schedules) {
    if (metrics_only) {
      metrics.push_back(simulate_metrics(s, build_costs(args, s), Validation::ShapeDone));
      progress.done(fmt::format("simulated {}", s.name));
      continue;
    }
    auto timeline = simulate(s, build_costs(args, s), Validation::AlreadyDone);  // load() validated it
    metrics.push_back(compute_metrics(timeline));
    progress.done(fmt::format("simulated {}", s.name));
    if (!args.timeline.empty()) {  // the predicted timeline, for `pipesim compare`
      RunRecord record;
      record.schedule = s;
      record.source = "predicted";
      record.workload = nlohmann::json::object();
      record.steps = {timeline.spans};
      traces.emplace_back(args.timeline, to_json_text(record));
    }
    if (!args.trace.empty())
      traces.emplace_back(trace_path(args.trace, s.name, schedules.size() > 1), to_chrome_trace(timeline));
  }
  std::string text;
  if (args.format == "json") {
    if (schedules.size() == 1) {
      text = schedule_metrics_json(schedules[0], metrics[0]).dump(1) + "\n";
    } else {
      auto all = nlohmann::ordered_json::array();
      for (std::size_t i = 0; i < schedules.size(); ++i) all.push_back(schedule_metrics_json(schedules[i], metrics[i]));
      text = all.dump(1) + "\n";
    }
  } else if (schedules.size() == 1) {
    text = schedule_metrics_table(schedules[0], metrics[0]);
  } else {
    text = schedule_comparison_table(schedules, metrics, args.cost_per_rank);
  }
  std::vector<std::pair<std::filesystem::path, std::string>> outputs(traces.begin(), traces.end());
  outputs.emplace_back(args.output, text);
  write_files_atomically(outputs);
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand("simulate", "Simulate schedules against costs: makespan, bubbles, memory, traces");
  cmd->footer(
      "Examples:\n"
      "  pipesim simulate --schedule 1f1b,zb-h1,zb-h2,zb-v --pp 4 -m 16 --cost F=1.2ms,I=1.3ms,W=0.7ms\n"
      "  pipesim simulate --schedule dualpipe --pp 8 -m 20 --cost F=1ms,I=1ms,W=0.5ms,FB=2.2ms \\\n"
      "      --p2p-latency 20us --p2p-bandwidth 50GB/s --activation-bytes 64MiB --trace dualpipe-trace.json\n"
      "  pipesim simulate --from-csv plan.csv --cost-file costs.json --format json\n"
      "  pipesim simulate --model deepseek-v3 --cluster deepseek-h800 --pp 16 --ep 64 --schedule dualpipe \\\n"
      "      --microbatches 120 --precision fp8 --trace dsv3.json   # a whole training step\n\n"
      "With --model, costs come from the model on the cluster (operators timed on the GPU, EP all-to-all and\n"
      "pipeline links over the topology, ZeRO-1 data parallel) and --cost is not used.\n\n"
      "Costs: --cost sets every stage: F forward, I backward for input, W backward for weights, B full\n"
      "backward (default I+W), FB an overlapped F&B pair (default F+B). Every duration needs a unit (ns, us, ms, s).\n"
      "A cost file overrides them per stage or rank (uneven first/last stages, a straggler):\n"
      "  {\"default\": {\"F\": \"1ms\", \"I\": \"1ms\", \"W\": \"0.5ms\"},\n"
      "   \"stages\": {\"0\": {\"F\": \"1.4ms\"}, \"7\": {\"F\": \"1.6ms\", \"activation_memory\": \"3GiB\"}},\n"
      "   \"ranks\": {\"3\": {\"slowdown\": 1.25}},\n"
      "   \"p2p\": {\"latency\": \"20us\", \"bandwidth\": \"50GB/s\"}, \"w_memory_fraction\": 0.25}\n"
      "Command-line p2p and memory flags apply after the file.\n\n"
      "Outputs: the table (or --format json) reports the makespan, the bubble rate ((cost - ideal)/cost, the\n"
      "ZeroBubble paper's definition), per rank busy, idle = makespan - busy, exposed communication (waiting on\n"
      "a transfer), peak live activations in stage micro-batch units (and bytes with --activation-memory), and\n"
      "parameter copies. --trace writes a Chrome trace (open in https://ui.perfetto.dev or chrome://tracing).");
  args->source.add_options(*cmd, true);
  args->model.add_options(*cmd);
  cmd->add_option("--cost", args->cost, "Per-stage costs F=..,I=..,W=..[,B=..][,FB=..]")->capture_default_str();
  cmd->add_flag("--cost-per-rank", args->cost_per_rank,
                "--cost is the cost of 1/pp of the model (a 1F1B stage); schedules with smaller chunks (ZB-V, "
                "DualPipeV, interleaved) get their share");
  cmd->add_option("--cost-file", args->cost_file, "JSON cost file (see below)")->check(existing_file());
  cmd->add_option("--p2p-latency", args->p2p_latency, "Point-to-point latency, e.g. 20us (default 0)");
  cmd->add_option("--p2p-bandwidth", args->p2p_bandwidth, "Point-to-point bandwidth, e.g. 50GB/s (default unlimited)");
  cmd->add_option("--activation-bytes", args->activation_bytes,
                  "Bytes sent per micro-batch per stage boundary, e.g. 64MiB (default 0)");
  cmd->add_option("--activation-memory", args->activation_memory,
                  "Bytes a stage holds per micro-batch from F until its backward, e.g. 2GiB (default 0)");
  cmd->add_option("--w-memory-fraction", args->w_memory_fraction,
                  "Share of a forward's activations kept from I until W (default 0.25)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--format,-f", args->format, "Report format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->add_option("--trace", args->trace,
                  "Write a Chrome trace here (several schedules: one file each, named FILE-SCHEDULE.json)");
  cmd->add_option("--output,-o", args->output, "Write the report here (atomically) instead of standard output");
  cmd->add_option("--calibration", args->calibration,
                  "Costs from `pipesim calibrate`; replays the schedule the calibrated run executed (schedule and "
                  "size flags simulate another schedule over the same stages)")
      ->check(existing_file());
  cmd->add_option("--timeline", args->timeline, "Write the predicted timeline (one schedule) for `pipesim compare`");
  auto* phases_flag = cmd->add_flag("--phases", args->phases,
                "Print one MoE layer as DeepSeek's phases (attn(F), mlp(B), dispatch(F), ...) and the overlapped "
                "F&B pair played on a compute and a communication stream, at the hardware profile's rates");
  cmd->add_option("--against", args->against, "With --phases: profiler trace(s) of that pair; adds measured times and errors")
      ->check(existing_file())
      ->needs(phases_flag);
  cmd->add_option("--pair-layers", args->pair_layers,
                  "With --phases: MoE layers per chunk in the pair (default: the trace's, else 4)")
      ->check(CLI::Range(1, 1000))
      ->needs(phases_flag);
  cmd->callback([args] {
    if (args->phases) {
      auto cluster = cluster_of(args->model);
      auto phases = model_phases(args->model, cluster);
      std::optional<ImportedRun> measured;
      if (!args->against.empty()) measured = import_for_phases(args->against);
      int layers = args->pair_layers;
      if (layers <= 0 && measured) {
        for (auto& p : measured->ranks.front().phases) layers += p.name == "attn(F)";
      }
      if (layers <= 0) layers = 4;
      print_or_write(phase_table(phases, cluster, layers, measured ? &*measured : nullptr, args->format == "json"),
                     args->output);
      return;
    }
    run(*args);
  });
}

}  // namespace pipesim::cli
