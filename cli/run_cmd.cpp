// `pipesim run` (under mpirun, one process per pipeline rank and expert-parallel replica): parses the flags, runs the schedule with
// run_pipeline() (runtime/run.hpp: links measured, clocks aligned, every action timed, the timeline gathered
// on rank 0, and with --check the step compared with a plain single-process step) and prints and writes what
// came back. Any failure on any rank stops every rank with its message; a failed check is an error too.
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/schedule_source.hpp"
#include "cli/sibling.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/text.hpp"
#include "models/model.hpp"
#include "runtime/comm.hpp"
#include "runtime/comm_threads.hpp"
#include "runtime/executor.hpp"
#include "runtime/p2p_order.hpp"
#include "runtime/run.hpp"
#if PIPESIM_HAVE_CUDA
#include "kernels/cuda/check.hpp"
#include "runtime/cuda/comm_nccl.hpp"
#include "runtime/cuda/cuda_device.hpp"
#include "runtime/cuda/staged_comm.hpp"
#endif
#include "schedules/lower.hpp"
#include "traces/chrome_trace.hpp"
#include "traces/timeline_file.hpp"

namespace pipesim::cli {
namespace {

struct RunArgs {
  ScheduleSource source;
  std::string model = "tiny";
  WorkloadSpec workload;
  std::string precision = "fp64";
  RunOptions options;
  std::string timeline, trace;
  std::string device = "auto", comm = "auto", gpu_share = "auto";
  std::string gemm_math = "exact";  // --device cuda, fp32: exact, tf32, bf16 or fp8 tensor-core math
  int threads = 0;  // > 0: ranks as threads of this process instead of MPI processes
  std::string config;  // every option of the run as parsed (CLI11's config text): what all ranks must share
};

// The run as `calibrate` and `compare` read it: the header (the lowered schedule), the workload, the link
// figures and every step's spans.
RunRecord make_run_record(const RunArgs& args, const Schedule& lowered, const RunResult& result) {
  RunRecord record;
  record.schedule = lowered;
  record.source = "measured";
  record.workload = {{"model", args.model},           {"layers", args.workload.layers},
                     {"experts", args.workload.experts}, {"ep", args.workload.ep},
                     {"hidden", args.workload.hidden}, {"heads", args.workload.heads},
                     {"ffn", args.workload.ffn},       {"seq", args.workload.seq},
                     {"micro_batch", args.workload.micro_batch}, {"precision", args.precision}};
  if (args.gemm_math != "exact") record.workload["gemm_math"] = args.gemm_math;  // the GEMM tables it measures
  if (!result.device.empty()) record.workload["device"] = result.device;          // whose rates its kernels show
  if (args.options.overlap_pairs) record.workload["overlap_pairs"] = true;        // how its pairs ran
  record.links = result.links;
  record.steps = result.steps;
  record.kernels = result.kernels;
  return record;
}

std::string check_line(const CheckResult& c) {
  return fmt::format("check: {} of {} micro-batch losses bit-identical to the single-process step; {} weight gradients, "
                     "max relative error {:.3g} (tolerance {:g}): {}",
                     c.exact_losses, c.losses, c.compared_gradients, c.worst_relative_error, c.tolerance,
                     c.ok ? "OK" : "MISMATCH");
}

// Rank 0: the check, the files, the summary line.
void report(const RunArgs& args, const Schedule& lowered, const RunResult& result) {
  if (result.check) fmt::print("{}\n", check_line(*result.check));
  auto record = make_run_record(args, lowered, result);
  Timeline t;
  t.schedule = std::make_shared<const Schedule>(lowered);
  t.spans = result.steps.back();
  if (!result.kernels.empty()) t.kernels = result.kernels.back();
  write_files_atomically({{args.timeline, args.timeline.empty() ? "" : to_json_text(record)},
                          {args.trace, args.trace.empty() ? "" : to_chrome_trace(t)}});
  std::int64_t makespan = 0;
  for (auto& s : result.steps.back()) makespan = std::max(makespan, s.end_ns);
  fmt::print("{} on {} ranks, {} micro-batches, {} steps: last step {:.3f} ms; p2p {:.1f} us, {:.2f} GB/s\n",
             lowered.name, lowered.ranks, lowered.microbatches, args.options.steps, static_cast<double>(makespan) / 1e6,
             result.links.p2p_latency_ns / 1e3, result.links.p2p_bandwidth_GBps);
}

// Refuses what every rank can see is wrong, alike on every rank, before anything runs.
void check_arguments(const RunArgs& args, Comm& comm) {
  if (args.model == "tiny" && args.workload.experts > 0) throw Error("--experts needs --model tiny-moe");
  if (args.workload.ep < 1) throw Error(fmt::format("--ep is {}; it must be at least 1", args.workload.ep));
  if (args.options.overlap_pairs && (args.workload.experts == 0 || args.workload.ep < 2))
    throw Error(fmt::format("--overlap-pairs needs MoE layers over --ep 2 or more (this run: {} experts, --ep {}); a "
                            "dense pair's halves already overlap on a GPU, each launched on its stage's own stream",
                            args.workload.experts, args.workload.ep));
  if (args.options.overlap_pairs && !comm.other_threads())
    throw Error("--overlap-pairs: this MPI does not offer MPI_THREAD_MULTIPLE, which a pair's second thread needs");
  if (comm.size() % args.workload.ep != 0)
    throw Error(fmt::format("--ep {} does not divide the {} MPI ranks (ranks = pipeline ranks x ep)", args.workload.ep,
                            comm.size()));
  int pipeline = comm.size() / args.workload.ep;
  if (args.source.ranks_given() && args.source.ranks != pipeline)
    throw Error(fmt::format("--pp {} does not match the {} MPI ranks / --ep {} = {} pipeline ranks; give --pp {}, "
                            "or start {} ranks (mpirun -n {})",
                            args.source.ranks, comm.size(), args.workload.ep, pipeline, pipeline,
                            args.source.ranks * args.workload.ep, args.source.ranks * args.workload.ep));
  // Every rank must run the same thing: every parsed option (CLI11 writes them all, defaults included, so a
  // new flag is covered without a list here) against rank 0's; the first difference is named.
  std::uint64_t size = args.config.size();
  comm.broadcast(&size, sizeof(size), 0);
  std::string root(size, '\0');
  if (comm.rank() == 0) root = args.config;
  comm.broadcast(root.data(), root.size(), 0);
  if (root != args.config) {
    auto lines = [](const std::string& text) { return split(text, '\n'); };
    auto mine = lines(args.config), theirs = lines(root);
    for (std::size_t i = 0; i < std::max(mine.size(), theirs.size()); ++i) {
      auto a = i < mine.size() ? mine[i] : std::string("(nothing)"), b = i < theirs.size() ? theirs[i] : std::string("(nothing)");
      if (a != b)
        throw Error(fmt::format("ranks were started with different arguments: this rank has {} where rank 0 has {}; "
                                "every rank must run the same command",
                                a, b));
    }
  }
}

#if PIPESIM_HAVE_CUDA
// The rank's place on its node (OpenMPI, then Slurm and MPICH spellings), to pick its GPU.
int local_rank(const Comm& comm) {
  for (auto name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"})
    if (auto* value = std::getenv(name)) return std::atoi(value);
  return comm.rank();
}
int local_size(const Comm& comm) {
  for (auto name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (auto* value = std::getenv(name)) return std::atoi(value);
  return comm.size();
}
#endif

// --device auto: CUDA when this build has it and a GPU is visible, else the CPU.
std::string resolve_device(const std::string& device) {
  if (device != "auto") return device;
#if PIPESIM_HAVE_CUDA
  if (cuda::device_count() > 0) return "cuda";
#endif
  return "cpu";
}

// Sizes that cannot run are refused before anything is allocated: the kernels index a tensor with int, and
// the whole model must fit in this machine's memory (weights, gradients, one micro-batch's activations).
void check_sizes(const WorkloadSpec& w, std::size_t element_bytes) {
  validate(w);
  double h = w.hidden, rows = static_cast<double>(w.micro_batch) * w.seq;
  double ffn = w.experts > 0 ? static_cast<double>(w.expert_ffn) : w.ffn;
  struct Tensor {
    const char* what;
    double elements;
  };
  for (auto t : {Tensor{"a hidden x hidden weight (--hidden)", h * h}, Tensor{"an MLP weight (--hidden x --ffn)", h * ffn},
                 Tensor{"an activation (--micro-batch-size x --seq x --hidden)", rows * h},
                 Tensor{"an MLP activation (--micro-batch-size x --seq x --ffn)", rows * ffn},
                 Tensor{"the attention probabilities (--micro-batch-size x --heads x --seq^2)",
                        static_cast<double>(w.micro_batch) * w.heads * w.seq * static_cast<double>(w.seq)}})
    if (t.elements > 2147483647.0)
      throw Error(fmt::format("{} would hold {:.3g} elements; the runtime's kernels index at most 2^31 - 1", t.what,
                              t.elements));
  double experts = w.experts > 0 ? w.experts : 1;
  double params = w.layers * (4 * h * h + 2 * h + 3 * h * ffn * experts);
  double bytes = element_bytes * (2 * params + 20 * rows * (h + ffn) * w.layers);
  double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (memory > 0 && bytes > memory)
    throw Error(fmt::format("the workload needs about {:.1f} GiB (weights, gradients and a micro-batch's activations) "
                            "and this machine has {:.1f} GiB; use smaller --hidden, --ffn, --layers or --seq",
                            bytes / (1u << 30), memory / (1u << 30)));
}

template <class T>
RunResult run_on(const RunArgs& args, Comm& comm, const Schedule& lowered, const std::string& device) {
  if (device == "cpu") {
    if (args.comm == "nccl") throw Error("--comm nccl needs --device cuda (NCCL moves GPU memory)");
    auto cpu = make_cpu_device<T>(!args.timeline.empty() || !args.trace.empty());  // operators, when written out
    return run_pipeline<T>(lowered, args.workload, comm, *cpu, args.options);
  }
#if PIPESIM_HAVE_CUDA
  int gpus = cuda::device_count();
  if (gpus == 0) throw Error("--device cuda: " + cuda::no_device_reason());
  int local = local_rank(comm);
  // Ranks that share a GPU each get their share of its SMs (--gpu-share auto): see sm_partition.hpp.
  GpuShare share;
  if (args.gpu_share == "auto") {
    share.count = (local_size(comm) - 1 - local % gpus) / gpus + 1;
    share.slot = local / gpus;
  }
  // Kernels are recorded when the run is written out (ranks as threads share the process's CUPTI recorder:
  // cuda_device.hpp); CUPTI's API records cost every CUDA call a little.
  bool record = !args.timeline.empty() || !args.trace.empty();
  auto math = args.gemm_math == "bf16"   ? cuda::GemmMath::Bf16
              : args.gemm_math == "tf32" ? cuda::GemmMath::Tf32
              : args.gemm_math == "fp8"  ? cuda::GemmMath::Fp8
                                         : cuda::GemmMath::Exact;
  auto gpu = make_cuda_device<T>(local % gpus, record, share, math);
  if (share.count > 1 && share.slot == 0)
    fmt::print("GPU {} is shared by {} ranks: each runs on {} (--gpu-share off lets them share every SM)\n",
               local % gpus, share.count, gpu->name());
  // NCCL needs a GPU per rank and, having no tags, each channel's sends and receives in one order.
  bool shared = comm.size() > gpus && local >= gpus;
  int shared_anywhere = shared ? 1 : 0;
  {
    double any = shared_anywhere;
    comm.all_reduce_sum(&any, 1);
    shared_anywhere = any > 0;
  }
  auto order = p2p_order(lowered);
  std::string comm_kind = args.comm;
  if (comm_kind == "auto") comm_kind = !shared_anywhere && order.matched() ? "nccl" : "mpi";
  if (comm_kind == "nccl" && shared_anywhere)
    throw Error(fmt::format("--comm nccl: {} ranks share {} GPUs on a node, and NCCL needs a GPU per rank; use --comm mpi",
                            comm.size(), gpus));
  if (comm_kind == "nccl" && !order.matched())
    throw Error(fmt::format("--comm nccl: the schedule's messages are not received in the order they are sent ({}); "
                            "use --comm mpi",
                            order.mismatches.front()));
  if (comm_kind == "nccl") {
    std::vector<NcclChannel> channels;
    for (int replica = 0; replica < args.workload.ep; ++replica)
      for (auto& c : order.channels)
        channels.push_back({replica * lowered.ranks + c.from, replica * lowered.ranks + c.to, c.direction});
    auto nccl = make_nccl_comm(comm, channels, message_direction);
    return run_pipeline<T>(lowered, args.workload, *nccl, *gpu, args.options);
  }
  auto staged = make_staged_comm(comm);
  return run_pipeline<T>(lowered, args.workload, *staged, *gpu, args.options);
#else
  (void)comm;
  (void)lowered;
  throw Error("--device cuda: this pipesim was built without CUDA and found no pipesim-cuda beside it (configure "
              "with -DPIPESIM_CUDA=ON where the CUDA toolkit is installed)");
#endif
}

// Everything a rank can refuse before running (arguments, schedule, sizes, device), alike on every rank.
Schedule prepare(const RunArgs& args, Comm& comm) {
  check_arguments(args, comm);
  if (comm.rank() == 0) check_output_folders({args.timeline, args.trace});  // before a long run, not after
  auto source = args.source;
  source.ranks = comm.size() / args.workload.ep;
  auto schedules = source.load();  // validated: a broken schedule is refused before anything runs
  if (schedules.empty())
    throw Error("run: no schedule; give --schedule NAME (pipesim schedule --list) or --from-csv FILE");
  check_sizes(args.workload, args.precision == "fp32" ? sizeof(float) : sizeof(double));
  auto device = resolve_device(args.device);
  if (args.gemm_math != "exact" && (device != "cuda" || args.precision != "fp32"))
    throw Error(fmt::format("--gemm-math {} needs --device cuda and --precision fp32 (tensor-core math on FP32 "
                            "storage); this run has --device {} and --precision {}",
                            args.gemm_math, device, args.precision));
#if PIPESIM_HAVE_CUDA
  if (device == "cuda" && cuda::device_count() == 0) throw Error("--device cuda: " + cuda::no_device_reason());
#endif
  auto lowered = lower(schedules.front());
  if (args.options.overlap_pairs &&
      std::none_of(lowered.programs.begin(), lowered.programs.end(), [](const std::vector<Action>& program) {
        return std::any_of(program.begin(), program.end(), [](const Action& a) { return a.op == Op::OverlapFB; });
      }))
    throw Error(fmt::format("--overlap-pairs: schedule {} has no overlapped F&B pairs (dualpipe and dualpipev do)",
                            lowered.name));
  return lowered;
}

// One rank's whole run; rank 0 gets the result back.
RunResult run_rank(const RunArgs& args, Comm& comm, const Schedule& lowered) {
  auto device = resolve_device(args.device);
  return args.precision == "fp32" ? run_on<float>(args, comm, lowered, device) : run_on<double>(args, comm, lowered, device);
}

void fail_on(const std::optional<CheckResult>& failed_check) {
  if (failed_check)
    throw Error(fmt::format("--check failed: the pipelined step differs from the single-process step ({} of {} losses "
                            "bit-identical, {} of {} gradients compared, max relative error {:.3g} > {:g})",
                            failed_check->exact_losses, failed_check->losses, failed_check->compared_gradients,
                            failed_check->gradients, failed_check->worst_relative_error, failed_check->tolerance),
                Error::Kind::Internal);
}

// --threads N: the ranks as threads of this process (runtime/comm_threads.hpp), no mpirun needed; the first
// failure stops every rank and is reported once.
void run_threads(const RunArgs& args) {
  std::optional<RunResult> result;
  Schedule lowered;
  run_on_threads(args.threads, [&](Comm& comm) {
    auto mine = prepare(args, comm);
    auto r = run_rank(args, comm, mine);
    if (comm.rank() == 0) {
      result = std::move(r);
      lowered = std::move(mine);
    }
  });
  report(args, lowered, *result);
  fail_on(result->check && !result->check->ok ? result->check : std::nullopt);
}

void run(const RunArgs& args) {
  if (args.threads > 0) return run_threads(args);
  auto comm = make_mpi_comm(args.options.overlap_pairs);
  // What can be refused before running is refused by all ranks together: they agree, rank 0 prints the
  // first rank's reason, and every process ends normally with exit 2 (no abort, no message per rank).
  Schedule lowered;
  std::string problem;
  int code = 0;
  try {
    lowered = prepare(args, *comm);
  } catch (const Error& e) {
    problem = fmt::format("rank {}: {}", comm->rank(), e.what());
    code = e.exit_code();
  }
  auto problems = comm->gather(problem + "\n" + std::to_string(code));
  std::string first;
  int first_code = 0;
  for (auto& p : problems) {
    auto cut = p.rfind('\n');
    if (first.empty() && cut > 0) {
      first = p.substr(0, cut);
      first_code = std::stoi(p.substr(cut + 1));
    }
  }
  int failed = first.empty() ? 0 : first_code;
  comm->broadcast(&failed, sizeof(failed), 0);
  if (failed) {
    // Rank 0 says why before any rank may exit: mpirun kills the job as soon as one process exits non-zero,
    // which could otherwise take rank 0 down before its message (main() prints nothing for an empty one).
    if (comm->rank() == 0) {
      fmt::print(stderr, "pipesim: error: {}\n", first);
      std::fflush(stderr);
    }
    int said = 1;
    comm->broadcast(&said, sizeof(said), 0);
    comm.reset();
    throw Error("", failed == 2 ? Error::Kind::Input : Error::Kind::Internal);
  }
  // A failure while running may leave peers blocked: it stops every rank through MPI.
  std::optional<CheckResult> failed_check;  // rank 0
  try {
    auto result = run_rank(args, *comm, lowered);
    if (comm->rank() == 0) {
      report(args, lowered, result);
      if (result.check && !result.check->ok) failed_check = result.check;
    }
  } catch (const Error& e) {
    comm->abort(e.what(), e.exit_code());
  } catch (const std::exception& e) {
    comm->abort(fmt::format("internal error: {}", e.what()), 1);
  }
  comm.reset();  // every rank has finished its part; MPI ends here
  fail_on(failed_check);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Execute a schedule for real on CPU or GPU ranks (one MPI process per rank)");
  cmd->footer(
      "Example:\n"
      "  mpirun -n 4 pipesim run --schedule dualpipe --microbatches 8 --steps 5 --timeline run.json --trace run-trace.json\n"
      "  mpirun -n 2 pipesim run --schedule zb-h1 --microbatches 4 --check   # compare with a single-process step\n"
      "  mpirun -n 4 pipesim run --model tiny-moe --ep 2 --schedule dualpipe --microbatches 4 --check\n"
      "  mpirun -n 2 pipesim run --device cuda --precision fp32 --schedule zb-h1 --microbatches 8 --check\n"
      "  pipesim run --threads 2 --schedule 1f1b --microbatches 4 --check   # ranks as threads, no mpirun\n\n"
      "The workload is a tiny transformer (RMSNorm, causal attention, SwiGLU MLP; backward split into I and W) split\n"
      "evenly over the stages a micro-batch crosses. The pipeline has (MPI ranks / --ep) ranks; --pp is optional and,\n"
      "when given, must say the same. With --ep E, E replicas of the pipeline train on their own micro-batches and\n"
      "share each MoE layer's experts through all-to-all dispatch and combine, and all-reduce their other gradients.\n"
      "--check exits 1 when the losses are not bit-identical or a gradient is off by more than 1e-12 (fp32: 1e-5).");
  args->source.add_options(*cmd, false);
  args->source.ranks_option->description("Pipeline ranks; optional, as MPI ranks / --ep decide them (a --pp that differs "
                                         "is refused)");
  args->source.ranks_option->default_str("MPI ranks / --ep");
  cmd->add_option("--model", args->model,
                  "Workload: tiny (dense), tiny-moe (MoE MLPs, experts over --ep ranks), or a preset scaled down by the "
                  "size flags (deepseek-v3 gives MoE with its top-8, capped by --experts)")
      ->capture_default_str();
  cmd->add_option("--ep", args->workload.ep, "Expert parallel: MPI ranks = pipeline ranks x ep; replicas train on "
                                             "their own micro-batches")
      ->capture_default_str();
  cmd->add_option("--experts", args->workload.experts, "Routed experts per MoE layer (tiny-moe; default 8)");
  auto* top_k = cmd->add_option("--experts-per-token", args->workload.experts_per_token,
                                "Top-k (a MoE preset: its own, capped by --experts)")
                    ->capture_default_str();
  cmd->add_option("--expert-ffn", args->workload.expert_ffn, "Expert MLP width")->capture_default_str();
  cmd->add_option("--layers", args->workload.layers, "Transformer layers")->capture_default_str();
  cmd->add_option("--hidden", args->workload.hidden, "Hidden size")->capture_default_str();
  cmd->add_option("--heads", args->workload.heads, "Attention heads")->capture_default_str();
  cmd->add_option("--ffn", args->workload.ffn, "MLP width")->capture_default_str();
  cmd->add_option("--seq", args->workload.seq, "Sequence length")->capture_default_str();
  cmd->add_option("--micro-batch-size", args->workload.micro_batch, "Sequences per micro-batch")->capture_default_str();
  cmd->add_option("--precision", args->precision, "fp64 or fp32")->check(CLI::IsMember({"fp64", "fp32"}))->capture_default_str();
  cmd->add_option("--threads", args->threads,
                  "Run N ranks as threads of this one process instead of under mpirun (N = pipeline ranks x ep)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--device", args->device,
                  "cpu, cuda (one GPU per rank, by local rank; ranks may share GPUs), or auto (cuda when a GPU is "
                  "visible)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--comm", args->comm,
                  "Point-to-point backend with --device cuda: nccl (a GPU per rank), mpi (GPU buffers staged through "
                  "host memory; ranks may share a GPU), or auto (nccl when it can)")
      ->check(CLI::IsMember({"auto", "mpi", "nccl"}))
      ->capture_default_str();
  cmd->add_option("--gpu-share", args->gpu_share,
                  "When several ranks share a GPU: auto gives each rank its own share of the SMs (a green context, "
                  "so the ranks behave like smaller GPUs and do not slow each other), off lets every rank use every SM")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  cmd->add_option("--gemm-math", args->gemm_math,
                  "With --device cuda --precision fp32: exact (FP32), or tf32 / bf16 tensor-core math on FP32 storage, "
                  "or fp8 (E4M3 with a per-tensor scale, through cuBLASLt; attention, and GEMMs whose n or k is not a "
                  "multiple of 16, take bf16), for timing runs whose kernels calibrate a TF32, BF16 or FP8 GEMM table "
                  "(calibrate --hw-profile-out)")
      ->check(CLI::IsMember({"exact", "tf32", "bf16", "fp8"}))
      ->capture_default_str();
  cmd->add_option("--steps", args->options.steps, "Training steps to run and time")->capture_default_str();
  cmd->add_flag("--check", args->options.check, "Compare losses and gradients with a plain single-process step");
  cmd->add_flag("--overlap-pairs", args->options.overlap_pairs,
                "DualPipe / DualPipeV with MoE over --ep 2 or more: run an overlapped F&B pair's two halves on two "
                "threads taking turns at the MoE layers' all-to-alls and GPU stream waits, so that on a GPU one "
                "half's waits and all-to-alls overlap the kernels the other has launched (docs/gpu-runtime.md §11); "
                "under mpirun the MPI must offer MPI_THREAD_MULTIPLE. Without it the halves run one after the other");
  cmd->add_option("--timeout", args->options.timeout_s,
                  "Seconds any rank may wait for a transfer or a collective before the job stops with what it waited "
                  "for (a stopped, stuck or lost rank); 0: wait forever")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--timeline", args->timeline, "Write the measured timeline (all steps) here");
  cmd->add_option("--trace", args->trace, "Write a Chrome trace of the last step here");
  cmd->callback([args, top_k, cmd] {
    // A preset scaled down: its kind of MLP (dense or MoE with its top-k), sizes from the flags.
    if (args->model != "tiny" && args->model != "tiny-moe") {
      auto preset = load_model(args->model);
      if (!preset.moe && args->workload.experts > 0)
        throw Error(fmt::format("--experts {}: {} has a dense MLP; use a MoE preset or --model tiny-moe",
                                args->workload.experts, args->model));
      if (preset.moe) {
        if (args->workload.experts == 0) args->workload.experts = 8;
        if (top_k->count() == 0)
          args->workload.experts_per_token = std::min(preset.moe->experts_per_token, args->workload.experts);
      }
    }
    if (args->model == "tiny-moe" && args->workload.experts == 0) args->workload.experts = 8;
    args->config = cmd->config_to_str(true, false);
    run(*args);
  });
}

void exec_cuda_program_for_run(int argc, char** argv) {
#if PIPESIM_HAVE_CUDA
  (void)argc;
  (void)argv;
#else
  std::string_view device = "auto";
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--device" && i + 1 < argc) device = argv[i + 1];
    if (arg.starts_with("--device=")) device = arg.substr(9);
  }
  if (device != "cuda" && device != "auto") return;
  // auto: without a loaded NVIDIA driver pipesim-cuda would find no GPU and run on the CPU anyway.
  std::error_code ec;
  if (device == "auto" && !std::filesystem::exists("/proc/driver/nvidia/version", ec)) return;
  exec_sibling("pipesim-cuda", argv);  // back here without it: --device cuda then says this build has no CUDA
#endif
}

}  // namespace pipesim::cli
