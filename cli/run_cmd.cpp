// `pipesim run` (under mpirun, one process per pipeline rank): executes a schedule for real on CPU ranks
// over MPI with a tiny transformer whose backward is split into I and W, times every action, and writes
// the measured Timeline (gathered on rank 0, clocks aligned by ping-pong) and a Chrome trace. --check
// compares the step with a plain single-process step: per-micro-batch losses bit for bit, weight gradients
// to 1e-12 relative (fp64). Any failure on any rank stops every rank with its message.
#include <chrono>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/schedule_source.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/numeric.hpp"
#include "runtime/comm.hpp"
#include "models/model.hpp"
#include "runtime/executor.hpp"
#include "schedules/lower.hpp"
#include "traces/chrome_trace.hpp"
#include "traces/timeline_file.hpp"

namespace pipesim::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct RunArgs {
  ScheduleSource source;
  std::string model = "tiny";
  WorkloadSpec workload;
  std::string precision = "fp64";
  int steps = 3;
  bool check = false;
  std::string timeline, trace;
};

std::int64_t ns_since(Clock::time_point origin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - origin).count();
}

// Ping-pong between ranks 0 and 1: latency from small messages, bandwidth from activation-sized ones.
std::pair<double, double> microbenchmark(Comm& comm, std::size_t bytes) {
  if (comm.size() < 2) return {0, 0};
  std::vector<char> buffer(std::max<std::size_t>(bytes, 8));
  auto round_trip = [&](std::size_t n, int reps) {
    double best = 1e300;
    for (int i = 0; i < reps; ++i) {
      auto t0 = Clock::now();
      if (comm.rank() == 0) {
        comm.wait(comm.isend(1, 7, buffer.data(), n));
        comm.wait(comm.irecv(1, 7, buffer.data(), n));
      } else if (comm.rank() == 1) {
        comm.wait(comm.irecv(0, 7, buffer.data(), n));
        comm.wait(comm.isend(0, 7, buffer.data(), n));
      }
      best = std::min(best, static_cast<double>(ns_since(t0)) / 2);
    }
    return best;
  };
  double latency = round_trip(8, 50);
  double large = round_trip(buffer.size(), 10);
  double values[2] = {latency, large > latency ? static_cast<double>(buffer.size()) / (large - latency) : 0};
  comm.broadcast(values, sizeof(values), 0);
  return {values[0], values[1]};
}

// The expert-parallel all-to-all with activation-sized buffers to every peer: bytes sent per second.
double all_to_all_benchmark(Comm& comm, int pipeline_ranks, std::size_t bytes) {
  auto group = comm.split(comm.rank() % pipeline_ranks, comm.rank() / pipeline_ranks);
  std::vector<std::vector<char>> send(static_cast<std::size_t>(group->size()), std::vector<char>(bytes));
  double best = 1e300;
  for (int i = 0; i < 5; ++i) {
    group->barrier();
    auto t0 = Clock::now();
    group->all_to_all_v(send);
    best = std::min(best, static_cast<double>(ns_since(t0)));
  }
  double rate = static_cast<double>(bytes) * (group->size() - 1) / best;  // GB/s = bytes per ns
  comm.broadcast(&rate, sizeof(rate), 0);
  return rate;
}

// Offset of this rank's clock to rank 0's (Cristian: the reply was stamped mid-round-trip), in ns.
std::int64_t clock_offset(Comm& comm, Clock::time_point origin) {
  std::int64_t offset = 0;
  for (int r = 1; r < comm.size(); ++r) {
    if (comm.rank() == 0) {
      for (int i = 0; i < 10; ++i) {
        std::int64_t dummy = 0;
        comm.wait(comm.irecv(r, 11, &dummy, sizeof(dummy)));
        std::int64_t t = ns_since(origin);
        comm.wait(comm.isend(r, 11, &t, sizeof(t)));
      }
    } else if (comm.rank() == r) {
      std::int64_t best_rtt = INT64_MAX;
      for (int i = 0; i < 10; ++i) {
        std::int64_t t0 = ns_since(origin), remote = 0;
        comm.wait(comm.isend(0, 11, &t0, sizeof(t0)));
        comm.wait(comm.irecv(0, 11, &remote, sizeof(remote)));
        std::int64_t t2 = ns_since(origin);
        if (t2 - t0 < best_rtt) {
          best_rtt = t2 - t0;
          offset = remote - (t0 + t2) / 2;
        }
      }
    }
  }
  return offset;
}

nlohmann::json spans_json(const std::vector<Span>& spans, std::int64_t offset) {
  auto out = nlohmann::json::array();
  for (auto& s : spans)
    out.push_back({s.rank, static_cast<int>(s.stream), to_string(s.action), s.start_ns + offset, s.end_ns + offset,
                   s.bytes, s.peer, s.flow});
  return out;
}

std::vector<Span> parse_spans(const std::string& text) {
  std::vector<Span> out;
  for (auto& a : nlohmann::json::parse(text))
    out.push_back({a[0].get<int>(), static_cast<Stream>(a[1].get<int>()), parse_action(a[2].get<std::string>()),
                   a[3].get<std::int64_t>(), a[4].get<std::int64_t>(), a[5].get<std::int64_t>(), a[6].get<int>(),
                   a[7].get<std::int64_t>()});
  return out;
}

// The plain single-process step: the whole model as one stage, micro-batch after micro-batch.
template <class T>
std::pair<std::map<int, T>, std::map<std::string, std::vector<double>>> reference_step(WorkloadSpec spec, int m) {
  int micro_batches = m * spec.ep;  // every replica's micro-batches, all experts here
  spec.ep = 1;
  spec.ep_rank = 0;
  StageModel<T> model(spec, 0, spec.layers, true, true);
  std::map<int, T> losses;
  for (int mb = 0; mb < micro_batches; ++mb) {
    model.forward(mb, {});
    losses[mb] = model.loss(mb);
    model.backward_input(mb, {});
    model.backward_weight(mb);
  }
  std::map<std::string, std::vector<double>> grads;
  for (auto& [name, values] : model.gradients()) grads[name].assign(values.begin(), values.end());
  return {losses, grads};
}

template <class T>
int run_typed(const RunArgs& args, Comm& comm, const Schedule& lowered) {
  auto device = make_cpu_device<T>();
  Executor<T> executor(lowered, args.workload, comm, *device);
  std::size_t bytes = static_cast<std::size_t>(args.workload.micro_batch) * args.workload.seq * args.workload.hidden * sizeof(T);
  auto [latency, bandwidth] = microbenchmark(comm, bytes);
  double all_to_all = args.workload.ep > 1 ? all_to_all_benchmark(comm, lowered.ranks, bytes) : 0;
  auto origin = Clock::now();
  comm.barrier();
  auto offset = clock_offset(comm, origin);
  RunRecord record;
  int status = 0;
  for (int step = 0; step < args.steps; ++step) {
    executor.zero_gradients();
    comm.barrier();
    auto spans = executor.run_step(origin);
    auto gathered = comm.gather(spans_json(spans, offset).dump());
    if (comm.rank() == 0) {
      std::vector<Span> all;
      for (int r = 0; r < lowered.ranks; ++r) {  // the first replica's ranks stand for the pipeline
        auto mine = parse_spans(gathered[static_cast<std::size_t>(r)]);
        all.insert(all.end(), mine.begin(), mine.end());
      }
      std::int64_t first = INT64_MAX;
      for (auto& s : all) first = std::min(first, s.start_ns);
      for (auto& s : all) {  // each step's timeline starts at 0
        s.start_ns -= first;
        s.end_ns -= first;
      }
      record.steps.push_back(std::move(all));
    }
    if (!args.check || step > 0) continue;
    // Correctness against the plain step: gather losses and gradients on rank 0.
    nlohmann::json mine;
    for (auto& [mb, loss] : executor.losses()) mine["losses"][std::to_string(mb)] = static_cast<double>(loss);
    for (auto& [name, values] : executor.gradients()) mine["grads"][name] = values;
    auto parts = comm.gather(mine.dump());
    if (comm.rank() != 0) continue;
    auto [want_losses, want_grads] = reference_step<T>(args.workload, lowered.microbatches);
    std::map<int, double> losses;
    std::map<std::string, std::vector<double>> grads;
    for (auto& part : parts) {
      auto j = nlohmann::json::parse(part);
      if (j.contains("losses"))
        for (auto& [mb, loss] : j["losses"].items()) losses[std::stoi(mb)] = loss.template get<double>();
      if (j.contains("grads"))
        for (auto& [name, values] : j["grads"].items()) grads[name] = values.template get<std::vector<double>>();
    }
    int exact = 0;
    for (auto& [mb, loss] : want_losses) {
      double want = static_cast<double>(loss);  // exact for float too
      if (losses.count(mb) && std::memcmp(&losses[mb], &want, sizeof(double)) == 0) ++exact;
    }
    double worst = 0;
    std::size_t compared = 0;
    for (auto& [name, want] : want_grads) {
      auto it = grads.find(name);
      if (it == grads.end() || it->second.size() != want.size()) {
        worst = INFINITY;
        continue;
      }
      worst = std::max(worst, relative_error(it->second, want));
      ++compared;
    }
    double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;
    bool ok = exact == static_cast<int>(want_losses.size()) && compared == want_grads.size() && worst <= tolerance;
    fmt::print("check: {} of {} micro-batch losses bit-identical to the single-process step; {} weight gradients, max "
               "relative error {:.3g} (tolerance {:g}): {}\n",
               exact, want_losses.size(), compared, worst, tolerance, ok ? "OK" : "MISMATCH");
    if (!ok) status = 1;
  }
  if (comm.rank() == 0) {
    record.schedule = lowered.name;
    record.ranks = lowered.ranks;
    record.stages = lowered.stages;
    record.microbatches = lowered.microbatches;
    record.virtual_stages = args.source.virtual_stages.value_or(2);
    record.stage_to_rank = lowered.stage_to_rank;
    record.source = "measured";
    record.workload = {{"model", args.model},           {"layers", args.workload.layers},
                       {"experts", args.workload.experts}, {"ep", args.workload.ep},
                       {"hidden", args.workload.hidden}, {"heads", args.workload.heads},
                       {"ffn", args.workload.ffn},       {"seq", args.workload.seq},
                       {"micro_batch", args.workload.micro_batch}, {"precision", args.precision}};
    record.p2p_latency_ns = latency;
    record.p2p_bandwidth_GBps = bandwidth;
    record.activation_bytes = static_cast<std::int64_t>(bytes);
    record.all_to_all_GBps = all_to_all;
    if (!args.timeline.empty()) write_file_atomically(args.timeline, to_json_text(record));
    if (!args.trace.empty()) {
      Timeline t;
      t.schedule = lowered.name;
      t.ranks = lowered.ranks;
      t.stages = lowered.stages;
      t.microbatches = lowered.microbatches;
      t.spans = record.steps.back();
      write_file_atomically(args.trace, to_chrome_trace(t));
    }
    std::int64_t makespan = 0;
    for (auto& s : record.steps.back()) makespan = std::max(makespan, s.end_ns);
    fmt::print("{} on {} ranks, {} micro-batches, {} steps: last step {:.3f} ms; p2p {:.1f} us, {:.2f} GB/s\n", lowered.name,
               lowered.ranks, lowered.microbatches, args.steps, static_cast<double>(makespan) / 1e6, latency / 1e3,
               bandwidth);
  }
  return status;
}

void run(const RunArgs& args) {
  auto comm = make_mpi_comm();
  int status = 0;
  try {
    if (args.model == "tiny" && args.workload.experts > 0) throw Error("--experts needs --model tiny-moe");
    if (comm->size() % args.workload.ep != 0)
      throw Error(fmt::format("--ep {} does not divide the {} MPI ranks (ranks = pipeline ranks x ep)", args.workload.ep,
                              comm->size()));
    if (args.steps < 1) throw Error(fmt::format("--steps is {}; run at least 1", args.steps));
    // Every rank must run the same thing: compare the arguments' fingerprint with rank 0's.
    auto fingerprint = std::hash<std::string>{}(fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", args.model,
                                                            args.workload.experts, args.workload.ep,
                                                            args.workload.experts_per_token, args.source.schedule,
                                                            args.source.from_csv, args.source.ranks, args.source.microbatches,
                                                            args.workload.layers, args.workload.hidden, args.workload.seq,
                                                            args.workload.heads, args.workload.ffn, args.precision, args.steps));
    auto root = fingerprint;
    comm->broadcast(&root, sizeof(root), 0);
    if (root != fingerprint) throw Error("ranks were started with different arguments; every rank must run the same command");
    auto source = args.source;
    source.ranks = comm->size() / args.workload.ep;
    auto schedule = source.load().front();  // validated: a broken schedule is refused before anything runs
    auto lowered = lower(schedule);
    status = args.precision == "fp32" ? run_typed<float>(args, *comm, lowered) : run_typed<double>(args, *comm, lowered);
  } catch (const Error& e) {
    comm->abort(e.what(), e.exit_code());
  } catch (const std::exception& e) {
    comm->abort(fmt::format("internal error: {}", e.what()), 1);
  }
  comm.reset();
  if (status) std::exit(status);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Execute a schedule for real on CPU ranks over MPI (one process per rank)");
  cmd->footer(
      "Example:\n"
      "  mpirun -n 4 pipesim run --schedule dualpipe --microbatches 8 --steps 5 --timeline run.json --trace run-trace.json\n"
      "  mpirun -n 2 pipesim run --schedule zb-h1 --microbatches 4 --check   # compare with a single-process step\n"
      "  mpirun -n 4 pipesim run --model tiny-moe --ep 2 --schedule dualpipe --microbatches 4 --check\n\n"
      "The workload is a tiny transformer (RMSNorm, causal attention, SwiGLU MLP; backward split into I and W) split\n"
      "evenly over the stages a micro-batch crosses. The pipeline has (MPI ranks / --ep) ranks (--pp is ignored); with\n"
      "--ep E, E replicas of the pipeline train on their own micro-batches and share each MoE layer's experts through\n"
      "all-to-all dispatch and combine, and all-reduce their other gradients.");
  args->source.add_options(*cmd, false);
  cmd->add_option("--model", args->model,
                  "Workload: tiny (dense), tiny-moe (MoE MLPs, experts over --ep ranks), or a preset scaled down by the "
                  "size flags (deepseek-v3 gives MoE with its top-8, capped by --experts)")
      ->capture_default_str();
  cmd->add_option("--ep", args->workload.ep, "Expert parallel: MPI ranks = pipeline ranks x ep; replicas train on "
                                             "their own micro-batches")
      ->capture_default_str();
  cmd->add_option("--experts", args->workload.experts, "Routed experts per MoE layer (tiny-moe; default 8)");
  cmd->add_option("--experts-per-token", args->workload.experts_per_token, "Top-k")->capture_default_str();
  cmd->add_option("--expert-ffn", args->workload.expert_ffn, "Expert MLP width")->capture_default_str();
  cmd->add_option("--layers", args->workload.layers, "Transformer layers")->capture_default_str();
  cmd->add_option("--hidden", args->workload.hidden, "Hidden size")->capture_default_str();
  cmd->add_option("--heads", args->workload.heads, "Attention heads")->capture_default_str();
  cmd->add_option("--ffn", args->workload.ffn, "MLP width")->capture_default_str();
  cmd->add_option("--seq", args->workload.seq, "Sequence length")->capture_default_str();
  cmd->add_option("--micro-batch-size", args->workload.micro_batch, "Sequences per micro-batch")->capture_default_str();
  cmd->add_option("--precision", args->precision, "fp64 or fp32")->check(CLI::IsMember({"fp64", "fp32"}))->capture_default_str();
  cmd->add_option("--steps", args->steps, "Training steps to run and time")->capture_default_str();
  cmd->add_flag("--check", args->check, "Compare losses and gradients with a plain single-process step");
  cmd->add_option("--timeline", args->timeline, "Write the measured timeline (all steps) here");
  cmd->add_option("--trace", args->trace, "Write a Chrome trace of the last step here");
  cmd->callback([args] {
    // A preset scaled down: its kind of MLP (dense or MoE with its top-k), sizes from the flags.
    if (args->model != "tiny" && args->model != "tiny-moe") {
      auto preset = load_model(args->model);
      if (preset.moe) {
        if (args->workload.experts == 0) args->workload.experts = 8;
        args->workload.experts_per_token = std::min(preset.moe->experts_per_token, args->workload.experts);
      }
    }
    if (args->model == "tiny-moe" && args->workload.experts == 0) args->workload.experts = 8;
    run(*args);
  });
}

}  // namespace pipesim::cli
