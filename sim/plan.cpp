// Plan validation and derivation (see plan.hpp).
#include "sim/plan.hpp"

#include <fmt/format.h>

#include "common/error.hpp"
#include "models/layer_split.hpp"

namespace pipesim {

std::string_view to_string(Precision precision) { return precision == Precision::FP8 ? "fp8" : "bf16"; }
std::string_view to_string(Placement placement) { return placement == Placement::TpPpDp ? "tp-pp-dp" : "tp-dp-pp"; }

Precision parse_precision(std::string_view text, std::string_view field) {
  for (auto p : {Precision::BF16, Precision::FP8})
    if (text == to_string(p)) return p;
  throw Error(fmt::format("{}: '{}' is not bf16 or fp8", field, text));
}

Placement parse_placement(std::string_view text, std::string_view field) {
  for (auto p : {Placement::TpDpPp, Placement::TpPpDp})
    if (text == to_string(p)) return p;
  throw Error(fmt::format("{}: '{}' is not tp-dp-pp or tp-pp-dp", field, text));
}

int ResolvedPlan::gpu(int pp_rank, int dp_rank, int tp_rank) const {
  if (plan.placement == Placement::TpPpDp) return tp_rank + plan.tp * (pp_rank + plan.pp * dp_rank);
  return tp_rank + plan.tp * (dp_rank + plan.dp * pp_rank);
}

std::vector<int> ResolvedPlan::dp_group(int pp_rank, int tp_rank) const {
  std::vector<int> out;
  for (int d = 0; d < plan.dp; ++d) out.push_back(gpu(pp_rank, d, tp_rank));
  return out;
}

std::vector<int> ResolvedPlan::ep_group(int pp_rank, int dp_rank) const {
  std::vector<int> out;
  int first = dp_rank / plan.ep * plan.ep;
  for (int d = first; d < first + plan.ep; ++d) out.push_back(gpu(pp_rank, d));
  return out;
}

ResolvedPlan resolve(const Plan& in, const ModelSpec& model, const ClusterSpec& cluster) {
  ResolvedPlan r;
  r.plan = in;
  auto& p = r.plan;
  auto bad = [](const std::string& what) { return Error("plan: " + what); };
  if (p.pp < 1 || p.tp < 1 || p.ep < 1 || p.micro_batch_size < 1)
    throw bad(fmt::format("pp {}, tp {}, ep {} and micro-batch-size {} must be positive", p.pp, p.tp, p.ep,
                          p.micro_batch_size));
  if (p.seq == 0) p.seq = model.seq;
  if (p.dp == 0) {
    if (cluster.total_gpus() % (p.pp * p.tp) != 0)
      throw bad(fmt::format("pp {} x tp {} does not divide the cluster's {} GPUs; give --dp", p.pp, p.tp,
                            cluster.total_gpus()));
    p.dp = cluster.total_gpus() / (p.pp * p.tp);
  }
  r.gpus = p.pp * p.dp * p.tp;
  if (r.gpus > cluster.total_gpus())
    throw bad(fmt::format("pp {} x dp {} x tp {} = {} GPUs, but {} has {}", p.pp, p.dp, p.tp, r.gpus, cluster.name,
                          cluster.total_gpus()));
  if (model.moe) {
    if (p.dp * p.tp % p.ep != 0 || p.dp % p.ep != 0)
      throw bad(fmt::format("ep {} must divide dp {} (experts are spread inside the data-parallel group)", p.ep, p.dp));
    if (model.moe->routed_experts % p.ep != 0)
      throw bad(fmt::format("ep {} must divide the {} routed experts of {}", p.ep, model.moe->routed_experts,
                            model.name));
  } else if (p.ep != 1) {
    throw bad(fmt::format("ep {} given, but {} has no experts", p.ep, model.name));
  }
  if (model.heads % p.tp != 0) throw bad(fmt::format("tp {} must divide the {} attention heads", p.tp, model.heads));
  if (p.microbatches == 0) {
    if (p.global_batch == 0) throw bad("give --microbatches or --global-batch");
    if (p.global_batch % (p.dp * p.micro_batch_size) != 0)
      throw bad(fmt::format("global batch {} is not a multiple of dp {} x micro-batch size {}", p.global_batch, p.dp,
                            p.micro_batch_size));
    p.microbatches = p.global_batch / (p.dp * p.micro_batch_size);
  } else if (p.global_batch == 0) {
    p.global_batch = p.dp * p.microbatches * p.micro_batch_size;
  } else if (p.global_batch != p.dp * p.microbatches * p.micro_batch_size) {
    throw bad(fmt::format("global batch {} != dp {} x microbatches {} x micro-batch size {}", p.global_batch, p.dp,
                          p.microbatches, p.micro_batch_size));
  }

  // The schedule at this size: refused here, before anything is generated.
  auto& info = find_schedule(p.schedule);
  if (auto problem = info.supports(r.schedule_options()))
    throw bad(fmt::format("{}: {}", p.schedule, problem->message));
  auto layout = info.layout(r.schedule_options());
  auto& routes = layout.routes;

  // Layers per stage along a route (each route is the whole model; DualPipe has two routes).
  r.stages = layout.stages;
  r.stage_to_rank = layout.stage_to_rank;
  r.stage_layers.assign(static_cast<std::size_t>(r.stages), {});
  int n = static_cast<int>(routes.front().size());
  std::vector<int> counts = p.layers_per_stage.empty() ? even_layer_split(model.layers, n) : p.layers_per_stage;
  if (static_cast<int>(counts.size()) != n)
    throw bad(fmt::format("layers-per-stage lists {} stages, but a micro-batch crosses {}", counts.size(), n));
  int total = 0;
  for (auto c : counts) {
    if (c < 0) throw bad("layers-per-stage entries must be non-negative");
    total += c;
  }
  if (total != model.layers)
    throw bad(fmt::format("layers-per-stage sums to {}, but {} has {} layers", total, model.name, model.layers));
  for (auto& route : routes) {
    int next = 1;
    for (int k = 0; k < n; ++k) {
      auto& layers = r.stage_layers[static_cast<std::size_t>(route[static_cast<std::size_t>(k)])];
      if (k == 0) layers.push_back(0);
      for (int i = 0; i < counts[static_cast<std::size_t>(k)]; ++i) layers.push_back(next++);
      if (k == n - 1)
        for (int j = 0; j <= model.mtp_modules; ++j) layers.push_back(model.layers + 1 + j);
    }
  }
  return r;
}

}  // namespace pipesim
