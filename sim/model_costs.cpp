// Cost model: operators timed on the GPU, EP all-to-all and pipeline links over the topology
// (see model_costs.hpp).
#include "sim/model_costs.hpp"
#include "sim/op_time.hpp"
#include "sim/phases.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/units.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace pipesim {
namespace {

// Whole nanoseconds, refusing what no action may take (common/units.hpp kMaxActionNs): a plan whose sizes
// make one action longer than that is an input error, not a wrapped-around integer.
std::int64_t ns(double nanoseconds) {
  if (!(nanoseconds <= static_cast<double>(kMaxActionNs)))
    throw Error(fmt::format("plan: one action would take {:.3g} s, beyond the 1e6 s pipesim simulates; check the "
                            "sizes (--seq, --micro-batch-size, model)",
                            nanoseconds / 1e9));
  return static_cast<std::int64_t>(std::ceil(nanoseconds));
}

}  // namespace

Shape plan_shape(const ResolvedPlan& rp) { return plan_shape(rp.plan); }

Shape plan_shape(const Plan& p) {
  Shape shape;
  shape.micro_batch = p.micro_batch_size;
  shape.seq = p.seq;
  shape.tp = p.tp;
  shape.ep = p.ep;
  shape.recompute = p.recompute;
  shape.fp8_linear_inputs = p.precision == Precision::FP8;
  shape.selective_recompute = p.selective_recompute;
  shape.flash_attention = p.flash_attention;
  shape.sequence_parallel = p.sequence_parallel;
  shape.dropout = p.dropout;
  return shape;
}

std::vector<StageWork> stage_work(const ModelSpec& model, const Topology& topology, const ResolvedPlan& rp,
                                  int dp_rank) {
  ReplicaView view(topology, model, rp, dp_rank, {});
  return stage_work(model, view);
}

std::vector<StageWork> stage_work(const ModelSpec& model, ReplicaView& view) {
  auto& rp = view.plan();
  auto& p = rp.plan;
  auto& cluster = view.topology().spec();
  auto shape = plan_shape(rp);
  bool fp8 = p.precision == Precision::FP8;
  auto layers = model_layers(model, shape);
  std::vector<StageWork> out(static_cast<std::size_t>(rp.stages));
  // EP all-to-all: at the profile's measured bandwidth for the transfer and size when it has one, else over
  // the topology.
  auto all_to_all = [&](const char* kind, int pp_rank, double bytes) -> std::int64_t {
    return ns(all_to_all_ns(cluster.profile, kind, p.ep, bytes, view.all_to_all(pp_rank)));
  };
  double activation = shape.tokens() * model.hidden * shape.bytes_per_element;
  auto tp_collective = [&](int pp_rank) {
    auto measured = [&](const char* kind, ReplicaView::Collective collective) {
      auto over_topology = view.tp_collective_ns(collective, pp_rank, activation);
      return ns(collective_ns(cluster.profile, kind, p.tp, activation, static_cast<double>(over_topology)));
    };
    return p.sequence_parallel ? measured("reduce_scatter", ReplicaView::Collective::ReduceScatter) +
                                     measured("all_gather", ReplicaView::Collective::AllGather)
                               : measured("all_reduce", ReplicaView::Collective::AllReduce);
  };
  for (int s = 0; s < rp.stages; ++s) {
    auto& work = out[static_cast<std::size_t>(s)];
    int pp_rank = rp.stage_to_rank[static_cast<std::size_t>(s)];
    PerPass<double> compute;
    for (int index : rp.stage_layers[static_cast<std::size_t>(s)]) {
      auto& layer = layers[static_cast<std::size_t>(index)];
      for (auto& op : layer.ops) {
        for (auto pass : kPassKinds) {
          compute[pass] += op_ns(op, pass, cluster.profile, fp8);
          work.flops[pass] += op.flops[pass];
        }
        work.params += op.params;
        if (op.part == Part::Experts) work.expert_params += op.params;
      }
      work.activation_bytes += layer.saved_until_I();
      work.activation_w_bytes += layer.saved_until_W();
      // Megatron tensor parallelism (docs/cost-model.md §13): two all-reduces of the layer's output
      // activations in F (after the attention and MLP row-parallel projections) and two of the input
      // gradients in I, on the critical path; with sequence parallelism each is a reduce-scatter and an
      // all-gather of the same bytes.
      bool transformer = layer.kind == LayerKind::Dense || layer.kind == LayerKind::Moe || layer.kind == LayerKind::Mtp;
      if (p.tp > 1 && transformer) {
        auto collective = tp_collective(pp_rank);
        work.tp_ns[PassKind::F] += 2 * collective;
        work.tp_ns[PassKind::I] += 2 * collective;
      }
      if (layer.dispatch_bytes > 0 && p.ep > 1) {
        work.ep_ns[PassKind::F] +=
            all_to_all("dispatch", pp_rank, layer.dispatch_bytes) + all_to_all("combine", pp_rank, layer.combine_bytes);
        // The gradients go back in BF16 (the combine's bytes): along the dispatch routes, then gathered.
        work.ep_ns[PassKind::I] +=
            all_to_all("dispatch", pp_rank, layer.combine_bytes) + all_to_all("combine", pp_rank, layer.combine_bytes);
      }
    }
    for (auto pass : kPassKinds) work.compute_ns[pass] = ns(compute[pass]);
  }
  return out;
}

ModelCosts model_costs(const ModelSpec& model, const Topology& topology, const ResolvedPlan& rp, int dp_rank,
                       const std::vector<double>& gpu_slowdown) {
  ReplicaView view(topology, model, rp, dp_rank, gpu_slowdown);
  return model_costs(model, view);
}

ModelCosts model_costs(const ModelSpec& model, ReplicaView& view) {
  auto& rp = view.plan();
  auto& p = rp.plan;
  auto& cluster = view.topology().spec();
  ModelCosts out;
  out.stages = stage_work(model, view);
  auto& costs = out.spec;
  costs.stages.resize(static_cast<std::size_t>(rp.stages));
  costs.rank_slowdown.assign(static_cast<std::size_t>(p.pp), 1.0);
  // A slow GPU slows its own replica, and every GPU of its EP group on ranks with expert layers: each
  // all-to-all waits for the slowest member (docs/cost-model.md §7).
  for (int r = 0; r < p.pp && view.has_slowdowns(); ++r) {
    auto& slowdown = costs.rank_slowdown[static_cast<std::size_t>(r)];
    slowdown = view.gpu_slowdown(r);
    bool experts = false;
    for (int s = 0; s < rp.stages; ++s)
      experts |= rp.stage_to_rank[static_cast<std::size_t>(s)] == r && out.stages[static_cast<std::size_t>(s)].ep_ns[PassKind::F] > 0;
    if (experts) slowdown = std::max(slowdown, view.ep_group_slowdown(r));
  }
  double boundary = static_cast<double>(p.micro_batch_size) * p.seq * model.hidden * plan_shape(rp).bytes_per_element / p.tp;
  auto partners = pair_partners(rp.stage_to_rank, p.pp);
  auto shape = plan_shape(rp);
  bool fp8 = p.precision == Precision::FP8;
  std::vector<LayerCost> layers;
  for (auto partner : partners)
    if (partner >= 0 && layers.empty()) layers = model_layers(model, shape);
  // Each layer's phases, priced once: a stage is the forward chunk of one pair and the backward of another,
  // both on its rank (so over the same EP group).
  std::map<int, std::vector<PhaseCost>> phases_of;
  auto phases = [&](int index, int pp_rank) -> const std::vector<PhaseCost>& {
    auto it = phases_of.find(index);
    if (it != phases_of.end()) return it->second;
    return phases_of[index] = layer_phases(layers[static_cast<std::size_t>(index)], shape, cluster.profile, fp8,
                                           view.all_to_all(pp_rank));
  };
  for (int s = 0; s < rp.stages; ++s) {
    auto& work = out.stages[static_cast<std::size_t>(s)];
    auto& c = costs.stages[static_cast<std::size_t>(s)];
    c.F_ns = std::max<std::int64_t>(1, work.compute_ns[PassKind::F] + work.ep_ns[PassKind::F] + work.tp_ns[PassKind::F]);
    c.I_ns = std::max<std::int64_t>(1, work.compute_ns[PassKind::I] + work.ep_ns[PassKind::I] + work.tp_ns[PassKind::I]);
    c.W_ns = std::max<std::int64_t>(1, work.compute_ns[PassKind::W]);
    c.activation_bytes = static_cast<std::int64_t>(boundary);
    c.activation_memory = static_cast<std::int64_t>(work.activation_bytes);
    c.activation_memory_w = static_cast<std::int64_t>(std::min(work.activation_w_bytes, work.activation_bytes));
    // The pair this stage's forward forms with the other stage on its rank (DualPipe's F&B); without EP
    // communication there is nothing to hide, and resolve_costs() prices it F + B.
    int partner = partners[static_cast<std::size_t>(s)];
    if (partner < 0 || partner == s) continue;
    auto& other = out.stages[static_cast<std::size_t>(partner)];
    double pair_comm = static_cast<double>(work.ep_ns[PassKind::F] + other.ep_ns[PassKind::I]);
    if (pair_comm <= 0) continue;
    // The pair as DeepSeek runs it: the forward chunk's layers and the backward chunk's (deepest first)
    // interleaved phase by phase on a compute and a communication stream (docs/hardware-profiles.md §4).
    int pp_rank = rp.stage_to_rank[static_cast<std::size_t>(s)];
    std::vector<std::vector<PhaseCost>> forward, backward;
    for (int index : rp.stage_layers[static_cast<std::size_t>(s)]) forward.push_back(phases(index, pp_rank));
    auto& back = rp.stage_layers[static_cast<std::size_t>(partner)];
    for (auto it = back.rbegin(); it != back.rend(); ++it) backward.push_back(phases(*it, pp_rank));
    auto pair = predict_pair(forward, backward, cluster.comm_compute_slowdown());
    c.FB_ns = ns(pair.makespan_ns) + work.tp_ns[PassKind::F] + other.tp_ns[PassKind::I];  // TP in line
    work.pair_exposed_ns = ns(pair.compute_stall_ns);
  }
  // Pipeline links between the stages' GPUs of this replica.
  costs.rank_links.resize(static_cast<std::size_t>(p.pp) * static_cast<std::size_t>(p.pp));
  for (int a = 0; a < p.pp; ++a)
    for (int b = 0; b < p.pp; ++b) {
      if (a == b) continue;
      auto link = view.link(a, b, boundary);
      costs.rank_links[static_cast<std::size_t>(a * p.pp + b)] = {static_cast<std::int64_t>(std::ceil(link.latency_ns)),
                                                                  link.bytes_per_ns};
    }
  return out;
}

}  // namespace pipesim
