// The whole-step simulation (see step.hpp). ZeRO-1 memory: BF16 parameters (2 bytes), FP32 gradients
// (4), FP32 master weights and Adam moments (12) sharded over the data-parallel group (experts over
// dp / ep). Gradients are reduce-scattered and parameters all-gathered in BF16; the optimizer step is
// memory-bound (its shard read and written once: ~32 bytes per parameter).
#include "sim/step.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"
#include "sim/engine.hpp"
#include "sim/model_costs.hpp"

namespace pipesim {
namespace {

std::vector<int> expert_dp_group(const ResolvedPlan& rp, int pp_rank, int dp_rank) {
  std::vector<int> out;
  for (int d = dp_rank % rp.plan.ep; d < rp.plan.dp; d += rp.plan.ep) out.push_back(rp.gpu(pp_rank, d));
  return out;
}

}  // namespace

StepReport simulate_step(const ModelSpec& model, const Topology& topology, const Plan& plan,
                         const std::vector<double>& gpu_slowdown) {
  auto schedule = generate_schedule(plan.schedule, {plan.pp, plan.microbatches, plan.virtual_stages});
  StepReport report;
  report.plan = resolve(plan, model, topology.spec(), schedule.stage_to_rank, schedule.routes);
  auto& rp = report.plan;
  auto& p = rp.plan;
  if (schedule.microbatches != p.microbatches)
    schedule = generate_schedule(p.schedule, {p.pp, p.microbatches, p.virtual_stages});
  validate(schedule);
  auto lowered = lower(schedule);
  report.model = model.name;
  report.cluster = topology.spec().name;
  if (!gpu_slowdown.empty() && static_cast<int>(gpu_slowdown.size()) != topology.spec().total_gpus())
    throw Error("stragglers: one slowdown per GPU expected", Error::Kind::Internal);

  int replicas = p.full ? p.dp : 1;
  report.simulated_replicas = replicas;
  for (int d = 0; d < replicas; ++d) {
    auto mc = model_costs(model, topology, rp, lowered, d, gpu_slowdown);
    validate_costs(mc.costs, lowered.stages, lowered.ranks);
    auto timeline = simulate_lowered(lowered, mc.costs);
    auto metrics = compute_metrics(timeline);

    // Data-parallel work of each pipeline rank of this replica, after its last action.
    std::vector<std::int64_t> pipeline_end(static_cast<std::size_t>(p.pp), 0), finish(static_cast<std::size_t>(p.pp), 0);
    for (auto& span : timeline.spans)
      if (span.stream == Stream::Compute)
        pipeline_end[static_cast<std::size_t>(span.rank)] = std::max(pipeline_end[static_cast<std::size_t>(span.rank)], span.end_ns);
    std::vector<GpuMemory> memory(static_cast<std::size_t>(p.pp));
    std::int64_t step = 0;
    int last_rank = 0;
    for (int r = 0; r < p.pp; ++r) {
      double params = 0, experts = 0;
      for (int s = 0; s < rp.stages; ++s)
        if (rp.stage_to_rank[static_cast<std::size_t>(s)] == r) {
          params += mc.stages[static_cast<std::size_t>(s)].params;
          experts += mc.stages[static_cast<std::size_t>(s)].expert_params;
        }
      double dense = params - experts;
      int expert_dp = std::max(1, p.dp / p.ep);
      auto rs = topology.reduce_scatter_ns(rp.dp_group(r), dense * 2) +
                (experts > 0 ? topology.reduce_scatter_ns(expert_dp_group(rp, r, d), experts * 2) : 0);
      auto ag = topology.all_gather_ns(rp.dp_group(r), dense * 2) +
                (experts > 0 ? topology.all_gather_ns(expert_dp_group(rp, r, d), experts * 2) : 0);
      double shard = dense / p.dp + experts / expert_dp;
      auto& gpu = topology.spec().gpu;
      auto optimizer = static_cast<std::int64_t>(std::ceil(shard * 32 / (gpu.hbm_GBps * gpu.memory_efficiency)));
      auto t0 = pipeline_end[static_cast<std::size_t>(r)];
      finish[static_cast<std::size_t>(r)] = t0 + rs + optimizer + ag;
      timeline.spans.push_back({r, Stream::DP, Action{}, t0, t0 + rs, 0, -1, -1, "reduce-scatter gradients"});
      timeline.spans.push_back({r, Stream::DP, Action{}, t0 + rs, t0 + rs + optimizer, 0, -1, -1, "optimizer step"});
      timeline.spans.push_back({r, Stream::DP, Action{}, t0 + rs + optimizer, finish[static_cast<std::size_t>(r)], 0, -1, -1,
                                "all-gather parameters"});
      if (finish[static_cast<std::size_t>(r)] > step) {
        step = finish[static_cast<std::size_t>(r)];
        last_rank = r;
      }
      auto& m = memory[static_cast<std::size_t>(r)];
      m.params = params * 2;
      m.grads = params * 4;
      m.optimizer = shard * 12;
      m.activations = metrics.ranks[static_cast<std::size_t>(r)].peak_activation_bytes;
    }
    if (d > 0 && step <= report.step_ns) continue;  // report the slowest replica

    // EP communication inside each action, on its own stream.
    std::vector<std::int64_t> exposed_ep(static_cast<std::size_t>(p.pp), 0);
    for (std::size_t i = 0, n = timeline.spans.size(); i < n; ++i) {
      auto span = timeline.spans[i];
      if (span.stream != Stream::Compute || !span.action.is_compute() || span.action.op == Op::W) continue;
      auto& work = mc.stages[static_cast<std::size_t>(span.action.stage())];
      std::int64_t comm = 0, hidden_start = span.start_ns;
      if (span.action.op == Op::OverlapFB) {
        auto& other = mc.stages[static_cast<std::size_t>(span.action.pass[1].stage)];
        comm = work.ep_ns[0] + other.ep_ns[1];
        exposed_ep[static_cast<std::size_t>(span.rank)] += work.pair_exposed_ns;
        hidden_start = span.start_ns;
      } else {
        comm = work.ep_ns[span.action.op == Op::F ? 0 : 1];
        exposed_ep[static_cast<std::size_t>(span.rank)] += comm;
        hidden_start = span.end_ns - comm;
      }
      if (comm > 0)
        timeline.spans.push_back({span.rank, Stream::EP, span.action, hidden_start, hidden_start + comm, 0, -1, -1,
                                  "dispatch + combine"});
    }
    std::stable_sort(timeline.spans.begin(), timeline.spans.end(), [](const Span& a, const Span& b) {
      return std::tie(a.rank, a.stream, a.start_ns) < std::tie(b.rank, b.stream, b.start_ns);
    });
    report.step_ns = step;
    report.pipeline_ns = metrics.makespan_ns;
    report.bubble_rate = metrics.bubble_rate;
    report.exposed_ep_ns = *std::max_element(exposed_ep.begin(), exposed_ep.end());
    report.exposed_pp_ns = 0;
    for (auto& rm : metrics.ranks) report.exposed_pp_ns = std::max(report.exposed_pp_ns, rm.exposed_comm_ns);
    report.exposed_dp_ns = step - pipeline_end[static_cast<std::size_t>(last_rank)];
    report.memory = memory;
    report.metrics = metrics;
    report.timeline = std::move(timeline);
    double compute = 0, comm = 0;  // over the stages with expert layers, forward and backward together
    for (auto& w : mc.stages)
      if (w.ep_ns[0] > 0) {
        compute += static_cast<double>(w.compute_ns[0] + w.compute_ns[1] + w.compute_ns[2]);
        comm += static_cast<double>(w.ep_ns[0] + w.ep_ns[1]);
      }
    report.compute_comm_ratio = comm > 0 ? compute / comm : 0;
  }

  Shape shape;
  shape.micro_batch = p.micro_batch_size;
  shape.seq = p.seq;
  double tokens = static_cast<double>(p.global_batch) * p.seq;
  double seconds = static_cast<double>(report.step_ns) / 1e9;
  report.tokens_per_s = tokens / seconds;
  report.tokens_per_day = report.tokens_per_s * 86400;
  double peak = static_cast<double>(rp.gpus) * topology.spec().gpu.bf16_tflops * 1e12 * seconds;
  report.mfu_causal = model_totals(model, shape).flops_per_token * tokens / peak;
  shape.causal = false;
  report.mfu_full = model_totals(model, shape).flops_per_token * tokens / peak;
  report.capacity_bytes = topology.spec().gpu.hbm_GiB * 1073741824.0;
  for (auto& m : report.memory) report.fits = report.fits && m.total() <= report.capacity_bytes;
  return report;
}

}  // namespace pipesim
