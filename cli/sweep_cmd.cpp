// `pipesim sweep`: a what-if study over any plan fields (the cartesian product of --vary lists), each point
// a whole-step simulation; a table, CSV or JSON with the Pareto front of step time against peak memory.
// Points run on all cores; under mpirun they are split across ranks and gathered on rank 0.
#include <atomic>
#include <charconv>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/plan_options.hpp"
#include "cli/report_csv.hpp"
#include "cli/report_table.hpp"
#include "common/atomic_file.hpp"
#include "common/capture.hpp"
#include "common/error.hpp"
#include "common/pareto.hpp"
#include "common/text.hpp"
#include "common/units.hpp"
#include "runtime/comm.hpp"
#include "schedules/registry.hpp"

namespace pipesim::cli {
namespace {

struct SweepArgs {
  PlanOptions base;
  ScheduleSize size{1, 0};  // --pp 1; micro-batches from -m or --global-batch
  std::string schedule = "1f1b";
  std::vector<std::string> vary;
  std::string format = "table";
  std::string output;
  int jobs = 0;
  std::optional<HwProfile> profile;  // --hw-profile, loaded once before the points
};

struct Axis {
  std::string field;
  std::vector<std::string> values;
};

const std::vector<std::string> kFields = {"schedule",      "cluster", "pp",       "dp",          "ep",
                                          "tp",            "microbatches", "micro-batch-size", "seq",
                                          "global-batch",  "virtual-stages", "precision", "placement", "recompute",
                                          "selective-recompute"};

int to_int(const std::string& field, const std::string& text) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0)
    throw Error(fmt::format("--vary {}: '{}' is not a non-negative integer", field, text));
  return value;
}

void set_field(Plan& p, std::string& cluster, const std::string& field, const std::string& value) {
  if (field == "schedule") p.schedule = value;
  else if (field == "cluster") cluster = value;
  else if (field == "pp") p.pp = to_int(field, value);
  else if (field == "dp") p.dp = to_int(field, value);
  else if (field == "ep") p.ep = to_int(field, value);
  else if (field == "tp") p.tp = to_int(field, value);
  else if (field == "microbatches") p.microbatches = to_int(field, value);
  else if (field == "micro-batch-size") p.micro_batch_size = to_int(field, value);
  else if (field == "seq") p.seq = to_int(field, value);
  else if (field == "global-batch") p.global_batch = to_int(field, value);
  else if (field == "virtual-stages") p.virtual_stages = to_int(field, value);
  else if (field == "precision") p.precision = parse_precision(value, "--vary precision");
  else if (field == "placement") p.placement = parse_placement(value, "--vary placement");
  else if (field == "recompute" || field == "selective-recompute") {
    if (value != "true" && value != "false") throw Error(fmt::format("--vary {}: '{}' is not true or false", field, value));
    (field == "recompute" ? p.recompute : p.selective_recompute) = value == "true";
  }
}

std::vector<Axis> parse_axes(const std::vector<std::string>& vary);

// The product of the axes' lengths, held at 2^40 (far past any limit) so it cannot overflow.
std::size_t point_count(const std::vector<Axis>& axes) {
  std::size_t points = 1;
  for (auto& a : axes) points = std::min<std::size_t>(points * a.values.size(), std::size_t(1) << 40);
  return points;
}

std::vector<Axis> parse_axes(const std::vector<std::string>& vary) {
  std::vector<Axis> axes;
  for (auto& v : vary) {
    auto eq = v.find('=');
    if (eq == std::string::npos || eq + 1 == v.size())
      throw Error(fmt::format("--vary: '{}' should be FIELD=V1,V2,... e.g. pp=8,16", v));
    Axis axis{v.substr(0, eq), {}};
    if (std::find(kFields.begin(), kFields.end(), axis.field) == kFields.end())
      throw Error(fmt::format("--vary: unknown field '{}' (fields: {})", axis.field, fmt::join(kFields, ", ")));
    for (auto& value : split(std::string_view(v).substr(eq + 1))) {
      if (value.empty()) throw Error(fmt::format("--vary {}: empty value in '{}'", axis.field, v));
      Plan probe;
      std::string cluster;
      set_field(probe, cluster, axis.field, value);  // a malformed value is refused here, not in a worker
      axis.values.push_back(value);
    }
    axes.push_back(std::move(axis));
  }
  return axes;
}

// One Topology per cluster the sweep visits, built by the first point that needs it and shared by the
// workers (its queries are const, its memo locked): building it for every point took a fifth of a point.
// At the start several workers may build the same one at once; the first kept wins (it is cheap beside a
// sweep).
class Topologies {
 public:
  explicit Topologies(const SweepArgs& args) : args_(args) {}
  std::shared_ptr<const Topology> of(const std::string& cluster) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = built_.find(cluster); it != built_.end()) return it->second;
    }
    auto spec = load_cluster(cluster);  // may throw: the point's error, nothing kept
    if (args_.profile) spec.profile = *args_.profile;
    if (args_.base.nodes > 0) {
      spec.nodes = args_.base.nodes;
      validate_cluster(spec, "--nodes");
    }
    auto topology = std::make_shared<const Topology>(spec);
    std::lock_guard lock(mutex_);
    return built_.emplace(cluster, std::move(topology)).first->second;
  }

 private:
  const SweepArgs& args_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Topology>> built_;
};

// One point as a JSON row: the varied values, then the results or the reason it is invalid.
nlohmann::ordered_json run_point(const SweepArgs& args, const ModelSpec& model, const std::vector<Axis>& axes,
                                 std::size_t index, Topologies& topologies) {
  nlohmann::ordered_json row;
  auto plan = args.base.resolved_plan(args.size);
  plan.schedule = args.schedule;
  std::string cluster = args.base.cluster;
  std::vector<const std::string*> values(axes.size());  // the first axis varies slowest
  for (std::size_t a = axes.size(), rest = index; a-- > 0; rest /= axes[a].values.size())
    values[a] = &axes[a].values[rest % axes[a].values.size()];
  for (std::size_t a = 0; a < axes.size(); ++a) {
    set_field(plan, cluster, axes[a].field, *values[a]);  // checked in parse_axes: cannot throw here
    row[axes[a].field] = *values[a];
  }
  try {
    find_schedule(plan.schedule);
    auto topology = topologies.of(cluster);
    auto r = simulate_step(model, *topology, plan, {}, StepDetail::Figures);
    double peak = 0;
    for (auto& m : r.memory) peak = std::max(peak, m.total());
    row["step_s"] = static_cast<double>(r.step_ns) / 1e9;
    row["tokens_per_s"] = r.tokens_per_s;
    row["mfu"] = r.mfu;
    row["bubble_rate"] = r.bubble_rate;
    row["peak_memory_gib"] = peak / 1073741824.0;
    row["fits"] = r.fits;
    row["error"] = "";
  } catch (const Error& e) {
    row["error"] = e.what();
  }
  return row;
}

void mark_pareto(std::vector<nlohmann::ordered_json>& rows) {
  std::vector<double> step(rows.size()), memory(rows.size());
  std::vector<bool> valid(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    valid[i] = rows[i]["error"] == "";
    if (valid[i]) {
      step[i] = rows[i]["step_s"];
      memory[i] = rows[i]["peak_memory_gib"];
    }
  }
  auto front = pareto_front(step, memory, valid);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i]["pareto"] = static_cast<bool>(front[i]);
}

std::string render(const std::vector<nlohmann::ordered_json>& rows, const std::vector<Axis>& axes,
                   const std::string& format) {
  if (format == "json") {
    auto all = nlohmann::ordered_json::array();
    for (auto& r : rows) all.push_back(r);
    return all.dump(1) + "\n";
  }
  std::vector<std::string> columns;
  for (auto& a : axes) columns.push_back(a.field);
  for (auto c : {"step_s", "tokens_per_s", "mfu", "bubble_rate", "peak_memory_gib", "fits", "pareto", "error"})
    columns.emplace_back(c);
  return format == "csv" ? rows_csv(rows, columns) : rows_table(rows, columns);
}

bool launched_by_mpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE"); }

void run(SweepArgs& args) {
  if (args.base.model.empty()) throw Error("sweep: give --model (a preset or a JSON file)");
  if (!args.base.hw_profile.empty()) args.profile = load_hw_profile(args.base.hw_profile);
  auto axes = parse_axes(args.vary);
  auto model = load_model(args.base.model);
  auto points = point_count(axes);
  if (points > 1'000'000) throw Error(fmt::format("sweep: {} points is too many (at most 1000000)", points));

  // Under mpirun the points are dealt round-robin over the ranks and gathered on rank 0 through the
  // runtime's Comm; without it one process does them all and MPI is never started.
  std::unique_ptr<Comm> comm;
  if (launched_by_mpirun()) comm = make_mpi_comm();
  int rank = comm ? comm->rank() : 0, size = comm ? comm->size() : 1;
  std::vector<std::size_t> mine;
  for (std::size_t i = static_cast<std::size_t>(rank); i < points; i += static_cast<std::size_t>(size)) mine.push_back(i);
  std::vector<std::string> results(mine.size());
  std::atomic<std::size_t> next{0}, done{0};
  std::mutex progress;
  unsigned jobs = args.jobs > 0 ? static_cast<unsigned>(args.jobs) : std::max(1u, std::thread::hardware_concurrency());
  std::exception_ptr failure;  // an unexpected error in a worker ends the sweep on the main thread
  auto* capture = Capture::current();  // the web server's request, which reports progress and may cancel
  Topologies topologies(args);
  auto worker = [&] {
    for (std::size_t k; (k = next++) < mine.size();) {
      try {
        if (capture && capture->cancelled()) throw Error("sweep: cancelled");
        results[k] = run_point(args, model, axes, mine[k], topologies).dump();
      } catch (...) {
        std::lock_guard lock(progress);
        if (!failure) failure = std::current_exception();
        next = mine.size();
        return;
      }
      auto finished = ++done;
      if (capture && capture->progress) {
        std::lock_guard lock(progress);
        capture->progress(finished, mine.size(), results[k]);
      }
      if (rank == 0 && (finished % std::max<std::size_t>(1, mine.size() / 10) == 0 || finished == mine.size())) {
        std::lock_guard lock(progress);
        fmt::print(stderr, "sweep: {}/{} points{}\n", finished * static_cast<std::size_t>(size), points,
                   size > 1 ? fmt::format(" (about; {} MPI ranks)", size) : "");
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::min<unsigned>(jobs, static_cast<unsigned>(std::max<std::size_t>(1, mine.size()))); ++t)
    threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (failure) {
    if (size > 1) {  // the other ranks would wait in the gather forever: stop them all with the message
      try {
        std::rethrow_exception(failure);
      } catch (const Error& e) {
        comm->abort(e.what(), e.exit_code());
      } catch (const std::exception& e) {
        comm->abort(fmt::format("internal error: {}", e.what()), 1);
      }
    }
    std::rethrow_exception(failure);
  }

  std::vector<nlohmann::ordered_json> rows(points);
  if (comm) {  // every rank's rows on rank 0, as one newline-separated buffer per rank
    std::string buffer;
    for (auto& r : results) buffer += r + "\n";
    auto all = comm->gather(buffer);
    comm.reset();  // MPI ends here, on every rank
    if (rank != 0) return;
    for (int r = 0; r < size; ++r) {
      auto& text = all[static_cast<std::size_t>(r)];
      std::size_t at = 0;
      for (std::size_t i = static_cast<std::size_t>(r); i < points; i += static_cast<std::size_t>(size)) {
        auto end = text.find('\n', at);
        rows[i] = nlohmann::ordered_json::parse(text.substr(at, end - at));
        at = end + 1;
      }
    }
  } else {
    for (std::size_t k = 0; k < mine.size(); ++k) rows[mine[k]] = nlohmann::ordered_json::parse(results[k]);
  }
  mark_pareto(rows);
  auto text = render(rows, axes, args.format);
  print_or_write(text, args.output);
}

}  // namespace

std::size_t sweep_points(const std::vector<std::string>& vary) { return point_count(parse_axes(vary)); }

void add_sweep_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("sweep", "What-if study: simulate the product of plan variations, find the Pareto front");
  cmd->footer(
      "Example:\n"
      "  pipesim sweep --model deepseek-v3 --cluster deepseek-h800 --ep 64 --precision fp8 \\\n"
      "      --vary schedule=1f1b,zb-h1,zb-v,dualpipe,dualpipev --vary pp=8,16 --vary microbatches=32,64,128\n"
      "  mpirun -n 4 pipesim sweep ...   # split the points over MPI ranks, gathered on rank 0\n\n"
      "Fields for --vary: " + fmt::format("{}", fmt::join(kFields, ", ")) + ".\n"
      "Every point is a whole step (pipeline + data parallel). Points that are impossible (a constraint of the\n"
      "schedule or the plan) are kept with the reason in the error column. pareto marks the points no other\n"
      "point beats on both step time and peak memory. Progress goes to stderr.");
  args->size.add_options(*cmd);
  args->base.add_options(*cmd);
  cmd->add_option("--schedule,-s", args->schedule, "Schedule when not varied")->capture_default_str();
  cmd->add_option("--vary", args->vary, "FIELD=V1,V2,... (repeatable)")->required();
  cmd->add_option("--format,-f", args->format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->add_option("--output,-o", args->output, "Write here (atomically) instead of standard output");
  cmd->add_option("--jobs,-j", args->jobs, "Threads (default: all cores)")->check(CLI::Range(1, 1024));
  cmd->callback([args] { run(*args); });
}

}  // namespace pipesim::cli
