// The whole-step simulation (see step.hpp). ZeRO-1 memory: BF16 parameters (2 bytes), FP32 gradients
// (4), FP32 master weights (4) and two Adam moments (FP32, or BF16 as DeepSeek-V3 keeps them) sharded
// over the data-parallel group (experts over dp / ep). Gradients are reduce-scattered and parameters all-gathered in BF16; the optimizer step is
// memory-bound (its shard read and written once: ~32 bytes per parameter). docs/cost-model.md §8.
#include "sim/step.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"
#include "sim/engine.hpp"
#include "sim/op_time.hpp"
#include "sim/replica_view.hpp"

namespace pipesim {
namespace {

std::vector<int> expert_dp_group(const ResolvedPlan& rp, int pp_rank, int dp_rank) {
  std::vector<int> out;
  for (int d = dp_rank % rp.plan.ep; d < rp.plan.dp; d += rp.plan.ep) out.push_back(rp.gpu(pp_rank, d));
  return out;
}

// Parameters of the stages on `pp_rank`, and of those the routed experts (reduced over dp / ep GPUs).
struct HeldParams {
  double all = 0, experts = 0;
  double dense() const { return all - experts; }
};

HeldParams held_params(const ResolvedPlan& rp, const std::vector<StageWork>& work, int pp_rank) {
  HeldParams held;
  for (int s = 0; s < rp.stages; ++s)
    if (rp.stage_to_rank[static_cast<std::size_t>(s)] == pp_rank) {
      held.all += work[static_cast<std::size_t>(s)].params;
      held.experts += work[static_cast<std::size_t>(s)].expert_params;
    }
  return held;
}

int expert_dp(const ResolvedPlan& rp) { return std::max(1, rp.plan.dp / rp.plan.ep); }

double optimizer_shard(const ResolvedPlan& rp, const HeldParams& held) {
  return held.dense() / rp.plan.dp + held.experts / expert_dp(rp);
}

}  // namespace

Schedule plan_compute_schedule(const ResolvedPlan& rp) {
  auto schedule = generate_schedule(rp.plan.schedule, rp.schedule_options());
  validate(schedule);
  return schedule;
}

Schedule plan_schedule(const ResolvedPlan& rp) { return lower(plan_compute_schedule(rp)); }

namespace {

// ZeRO-1's reduce-scatter (or all-gather) of `held`'s BF16 gradients: dense over the dp group, experts over
// their dp/ep group; at the profile's measured bus bandwidth when it has one, else over the topology.
std::int64_t zero_collective_ns(const Topology& topology, const ResolvedPlan& rp, const HeldParams& held,
                                const char* kind, int pp_rank, int dp_rank) {
  auto& hw = topology.spec().profile;
  auto one = [&](const std::vector<int>& group, double bytes) -> std::int64_t {
    if (bytes <= 0) return 0;
    auto over_topology = std::string_view(kind) == "reduce_scatter" ? topology.reduce_scatter_ns(group, bytes)
                                                                    : topology.all_gather_ns(group, bytes);
    return static_cast<std::int64_t>(
        std::ceil(collective_ns(hw, kind, static_cast<int>(group.size()), bytes, static_cast<double>(over_topology))));
  };
  return one(rp.dp_group(pp_rank), held.dense() * 2) +
         (held.experts > 0 ? one(expert_dp_group(rp, pp_rank, dp_rank), held.experts * 2) : 0);
}

}  // namespace

DataParallelTail dp_tail(const Topology& topology, const ResolvedPlan& rp, const std::vector<StageWork>& work,
                         int pp_rank, int dp_rank) {
  auto held = held_params(rp, work, pp_rank);
  DataParallelTail tail;
  tail.reduce_scatter_ns = zero_collective_ns(topology, rp, held, "reduce_scatter", pp_rank, dp_rank);
  tail.all_gather_ns = zero_collective_ns(topology, rp, held, "all_gather", pp_rank, dp_rank);
  // A memory-bound pass at the hardware profile's bandwidth (docs/cost-model.md §8).
  tail.optimizer_ns = static_cast<std::int64_t>(std::ceil(optimizer_shard(rp, held) *
                                                          optimizer_bytes_per_param(rp.plan.moment_bytes()) /
                                                          topology.spec().profile.memory_GBps.value));
  return tail;
}

std::vector<GradientBucket> gradient_buckets(const Topology& topology, const ResolvedPlan& rp,
                                             const std::vector<StageWork>& work, const Timeline& timeline,
                                             int pp_rank, int dp_rank) {
  // The last span that computes each stage's weight gradients (a W, a B, or the B half of an F&B pair).
  struct Last {
    std::int64_t start = 0, end = -1;
  };
  std::vector<Last> last(static_cast<std::size_t>(rp.stages));
  for (auto& span : timeline.spans) {
    if (span.rank != pp_rank || span.stream != Stream::Compute || !span.action.is_compute()) continue;
    for (auto& pass : span.action.passes())
      if ((pass.op == Op::W || pass.op == Op::B) && span.end_ns > last[static_cast<std::size_t>(pass.stage)].end)
        last[static_cast<std::size_t>(pass.stage)] = {span.start_ns, span.end_ns};
  }
  std::vector<GradientBucket> buckets;
  for (int s = 0; s < rp.stages; ++s) {
    auto& l = last[static_cast<std::size_t>(s)];
    auto& w = work[static_cast<std::size_t>(s)];
    if (rp.stage_to_rank[static_cast<std::size_t>(s)] != pp_rank || l.end < 0 || w.params <= 0) continue;
    // One bucket per layer, each an equal share of the stage's parameters, ready as the last backward reaches
    // it (layers finish in reverse order, evenly over the action).
    int n = std::max<int>(1, static_cast<int>(rp.stage_layers[static_cast<std::size_t>(s)].size()));
    HeldParams share{w.params / n, w.expert_params / n};
    auto rs = zero_collective_ns(topology, rp, share, "reduce_scatter", pp_rank, dp_rank);
    for (int j = 1; j <= n; ++j) buckets.push_back({l.start + (l.end - l.start) * j / n, rs});
  }
  std::sort(buckets.begin(), buckets.end(),
            [](const GradientBucket& a, const GradientBucket& b) { return a.ready_ns < b.ready_ns; });
  return buckets;
}

GpuMemory gpu_memory(const ResolvedPlan& rp, const std::vector<StageWork>& work, int pp_rank,
                     double peak_activation_bytes) {
  auto held = held_params(rp, work, pp_rank);
  GpuMemory m;
  m.params = held.all * 2;
  m.grads = held.all * 4;
  m.optimizer = optimizer_shard(rp, held) * (4 + 2 * rp.plan.moment_bytes());  // FP32 master + two moments
  m.activations = peak_activation_bytes;
  return m;
}

namespace {

// One compute action's expert all-to-all: its time, the part the compute stream waits for, and whether it
// runs from the action's start (hidden behind an overlapped pair) or in line at its end. None for a W.
struct ActionEp {
  std::int64_t comm_ns = 0, exposed_ns = 0;
  bool from_start = false;
};
ActionEp action_ep(const Action& action, const std::vector<StageWork>& work) {
  if (!action.is_compute() || action.op == Op::W) return {};
  auto& mine = work[static_cast<std::size_t>(action.stage())];
  if (action.op == Op::OverlapFB)
    return {mine.ep_ns[PassKind::F] + work[static_cast<std::size_t>(action.pass[1].stage)].ep_ns[PassKind::I],
            mine.pair_exposed_ns, true};
  auto comm = mine.ep_ns[action.op == Op::F ? PassKind::F : PassKind::I];
  return {comm, comm, false};
}

}  // namespace

std::vector<std::int64_t> exposed_ep(const Schedule& schedule, const std::vector<StageWork>& work) {
  std::vector<std::int64_t> exposed(static_cast<std::size_t>(schedule.ranks), 0);
  for (std::size_t r = 0; r < schedule.programs.size(); ++r)
    for (auto& action : schedule.programs[r]) exposed[r] += action_ep(action, work).exposed_ns;
  return exposed;
}

std::vector<std::int64_t> overlay_ep(Timeline& timeline, const std::vector<StageWork>& work) {
  std::vector<std::int64_t> exposed(static_cast<std::size_t>(timeline.schedule->ranks), 0);
  for (std::size_t i = 0, n = timeline.spans.size(); i < n; ++i) {
    auto span = timeline.spans[i];
    if (span.stream != Stream::Compute) continue;
    auto ep = action_ep(span.action, work);
    exposed[static_cast<std::size_t>(span.rank)] += ep.exposed_ns;
    auto start = ep.from_start ? span.start_ns : span.end_ns - ep.comm_ns;
    if (ep.comm_ns > 0)
      timeline.spans.push_back({span.rank, Stream::EP, span.action, start, start + ep.comm_ns, 0, -1, -1, "dispatch + combine"});
  }
  std::stable_sort(timeline.spans.begin(), timeline.spans.end(), [](const Span& a, const Span& b) {
    return std::tie(a.rank, a.stream, a.start_ns) < std::tie(b.rank, b.stream, b.start_ns);
  });
  return exposed;
}

void add_throughput(StepReport& report, const ModelSpec& model, const GpuSpec& gpu) {
  auto& p = report.plan.plan;
  // The model's FLOPs per token, unsharded, at the plan's sizes (docs/cost-model.md §4.1).
  Shape shape;
  shape.micro_batch = p.micro_batch_size;
  shape.seq = p.seq;
  shape.recompute = p.recompute;
  shape.selective_recompute = p.selective_recompute;
  double tokens = static_cast<double>(p.global_batch) * p.seq;
  double seconds = static_cast<double>(report.step_ns) / 1e9;
  report.tokens_per_s = tokens / seconds;
  report.tokens_per_day = report.tokens_per_s * 86400;
  double peak = static_cast<double>(report.plan.gpus) * gpu.bf16_tflops * 1e12 * seconds;
  report.flops_per_token = flops_per_token(model, shape, p.flops_convention);
  report.mfu = report.flops_per_token * tokens / peak;
  report.mfu_causal = flops_per_token(model, shape, FlopsConvention::Pipesim) * tokens / peak;
  report.mfu_full = flops_per_token(model, shape, FlopsConvention::Palm) * tokens / peak;
}

StepReport simulate_step(const ModelSpec& model, const Topology& topology, const Plan& plan,
                         const std::vector<double>& gpu_slowdown, StepDetail detail) {
  StepReport report;
  report.plan = resolve(plan, model, topology.spec());
  auto& rp = report.plan;
  auto& p = rp.plan;
  if (!gpu_slowdown.empty() && static_cast<int>(gpu_slowdown.size()) != topology.spec().total_gpus())
    throw Error("stragglers: one slowdown per GPU expected", Error::Kind::Internal);
  // Figures alone play the compute-only schedule with the metrics pass; the gradient buckets of
  // --overlap-grad-reduce read the timeline, so they take the engine as a timeline does.
  bool figures = detail == StepDetail::Figures && !p.overlap_grad_reduce;
  // Figures: the shape checked here, the rest by the metrics pass as it plays (one walk, as `simulate`).
  std::shared_ptr<const Schedule> compute_only, lowered;
  if (figures) {
    compute_only = std::make_shared<const Schedule>(generate_schedule(p.schedule, rp.schedule_options()));
    validate_shape(*compute_only);
  } else {
    lowered = std::make_shared<const Schedule>(plan_schedule(rp));
  }
  report.model = model.name;
  report.cluster = topology.spec().name;
  report.simulated_replicas = p.full ? p.dp : 1;

  // Replicas that answer the cluster's questions alike have the same costs and timeline: each class is
  // priced and simulated once (sim/replica_view.hpp). Only the data-parallel tail is per replica.
  struct Priced {
    ReplicaView view;
    ModelCosts costs;
    Timeline timeline;
    Metrics metrics;
  };
  std::vector<std::unique_ptr<Priced>> classes;
  for (int d = 0; d < report.simulated_replicas; ++d) {
    ReplicaView view(topology, model, rp, d, gpu_slowdown);
    Priced* priced = nullptr;
    for (auto& c : classes)
      if (c->view.answers_like_me(view)) {
        priced = c.get();
        break;
      }
    if (!priced) {
      auto mc = model_costs(model, view);
      Timeline timeline;
      Metrics metrics;
      if (figures) {
        metrics = simulate_metrics(*compute_only, mc.spec, Validation::ShapeDone);
      } else {
        timeline = simulate_lowered(lowered, resolve_costs(mc.spec, *lowered));
        metrics = compute_metrics(timeline);
      }
      classes.push_back(std::make_unique<Priced>(Priced{std::move(view), std::move(mc), std::move(timeline), std::move(metrics)}));
      priced = classes.back().get();
    }
    auto& mc = priced->costs;
    auto& metrics = priced->metrics;
    // Each GPU starts its data-parallel work when its own pipeline work ends.
    std::vector<GpuMemory> memory;
    std::vector<Span> dp_spans;
    std::int64_t step = 0, last_pipeline_end = 0;
    for (int r = 0; r < p.pp; ++r) {
      auto t0 = metrics.ranks[static_cast<std::size_t>(r)].last_end_ns;
      auto tail = dp_tail(topology, rp, mc.stages, r, d);
      auto rs = t0 + tail.reduce_scatter_ns;
      if (p.overlap_grad_reduce) {  // bucket by bucket on the DP stream as the backward frees them (§8)
        rs = 0;
        for (auto& b : gradient_buckets(topology, rp, mc.stages, priced->timeline, r, d)) {
          auto start = std::max(rs, b.ready_ns);
          rs = start + b.duration_ns;
          dp_spans.push_back({r, Stream::DP, Action{}, start, rs, 0, -1, -1, "reduce-scatter gradients"});
        }
        rs = std::max(rs, t0);
      } else {
        dp_spans.push_back({r, Stream::DP, Action{}, t0, rs, 0, -1, -1, "reduce-scatter gradients"});
      }
      auto opt = rs + tail.optimizer_ns, end = opt + tail.all_gather_ns;
      dp_spans.push_back({r, Stream::DP, Action{}, rs, opt, 0, -1, -1, "optimizer step"});
      dp_spans.push_back({r, Stream::DP, Action{}, opt, end, 0, -1, -1, "all-gather parameters"});
      if (end > step) {
        step = end;
        last_pipeline_end = t0;
      }
      memory.push_back(gpu_memory(rp, mc.stages, r, metrics.ranks[static_cast<std::size_t>(r)].peak_activation_bytes));
    }
    if (d > 0 && step <= report.step_ns) continue;  // report the slowest replica

    std::vector<std::int64_t> ep;
    if (figures) {
      ep = exposed_ep(*compute_only, mc.stages);
    } else {
      report.timeline = priced->timeline;
      report.timeline.spans.insert(report.timeline.spans.end(), dp_spans.begin(), dp_spans.end());
      ep = overlay_ep(report.timeline, mc.stages);
    }
    report.step_ns = step;
    report.pipeline_ns = metrics.makespan_ns;
    report.bubble_rate = metrics.bubble_rate;
    report.exposed_ep_ns = *std::max_element(ep.begin(), ep.end());
    report.exposed_pp_ns = 0;
    for (auto& rm : metrics.ranks) report.exposed_pp_ns = std::max(report.exposed_pp_ns, rm.exposed_comm_ns);
    report.exposed_dp_ns = step - last_pipeline_end;
    report.memory = std::move(memory);
    report.metrics = metrics;
    double compute = 0, comm = 0;  // over the stages with expert layers, forward and backward together
    for (auto& w : mc.stages)
      if (w.ep_ns[PassKind::F] > 0) {
        compute += static_cast<double>(w.compute_ns.sum());
        comm += static_cast<double>(w.ep_ns.sum());
      }
    report.compute_comm_ratio = comm > 0 ? compute / comm : 0;
  }

  add_throughput(report, model, topology.spec().gpu);
  report.capacity_bytes = topology.spec().gpu.capacity_bytes();  // docs/cost-model.md §8
  for (auto& m : report.memory) report.fits = report.fits && m.total() <= report.capacity_bytes;
  return report;
}

}  // namespace pipesim
