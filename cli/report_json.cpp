// The JSON reports (`--format json`): one schedule's metrics, a whole training step. Field names carry
// their units.
#include "cli/report_json.hpp"

namespace pipesim::cli {
namespace {

double to_us(std::int64_t ns) { return static_cast<double>(ns) / 1000.0; }

}  // namespace

nlohmann::ordered_json schedule_metrics_json(const Schedule& s, const Metrics& m) {
  nlohmann::ordered_json out;
  out["schedule"] = s.name;
  out["stages"] = s.stages;
  out["microbatches"] = s.microbatches;
  out["makespan_us"] = to_us(m.makespan_ns);
  out["bubble_rate"] = m.bubble_rate;
  out["p2p_bytes"] = m.p2p_bytes;
  auto& ranks = out["ranks"];
  ranks = nlohmann::ordered_json::array();
  for (auto& r : m.ranks)
    ranks.push_back({{"rank", r.rank},
                     {"busy_us", to_us(r.busy_ns)},
                     {"idle_us", to_us(r.idle_ns)},
                     {"exposed_comm_us", to_us(r.exposed_comm_ns)},
                     {"peak_activations", r.peak_activations},
                     {"peak_activation_bytes", r.peak_activation_bytes},
                     {"parameter_copies", r.parameter_copies}});
  return out;
}

nlohmann::ordered_json step_report_json(const StepReport& r) {
  auto& p = r.plan.plan;
  nlohmann::ordered_json j;
  j["model"] = r.model;
  j["cluster"] = r.cluster;
  j["schedule"] = p.schedule;
  j["plan"] = {{"pp", p.pp}, {"dp", p.dp}, {"ep", p.ep}, {"tp", p.tp}, {"microbatches", p.microbatches},
               {"micro_batch_size", p.micro_batch_size}, {"seq", p.seq}, {"global_batch", p.global_batch},
               {"precision", to_string(p.precision)}, {"recompute", p.recompute}, {"selective_recompute", p.selective_recompute}};
  j["simulated_replicas"] = r.simulated_replicas;
  j["step_us"] = static_cast<double>(r.step_ns) / 1e3;
  j["pipeline_us"] = static_cast<double>(r.pipeline_ns) / 1e3;
  j["tokens_per_s"] = r.tokens_per_s;
  j["tokens_per_day"] = r.tokens_per_day;
  j["flops_convention"] = to_string(p.flops_convention);
  j["flops_per_token"] = r.flops_per_token;
  j["mfu"] = r.mfu;
  j["mfu_causal"] = r.mfu_causal;
  j["mfu_full_attention"] = r.mfu_full;
  j["bubble_rate"] = r.bubble_rate;
  j["ep_compute_comm_ratio"] = r.compute_comm_ratio;
  j["exposed_comm_us"] = {{"ep", static_cast<double>(r.exposed_ep_ns) / 1e3},
                          {"pp", static_cast<double>(r.exposed_pp_ns) / 1e3},
                          {"dp", static_cast<double>(r.exposed_dp_ns) / 1e3}};
  j["capacity_bytes"] = r.capacity_bytes;
  j["fits"] = r.fits;
  auto ranks = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < r.memory.size(); ++i) {
    auto& m = r.memory[i];
    auto& rm = r.metrics.ranks[i];
    ranks.push_back({{"rank", i}, {"busy_us", static_cast<double>(rm.busy_ns) / 1e3},
                     {"idle_us", static_cast<double>(rm.idle_ns) / 1e3},
                     {"peak_activations", rm.peak_activations},
                     {"memory_bytes", {{"params", m.params}, {"grads", m.grads}, {"optimizer", m.optimizer},
                                       {"activations", m.activations}, {"total", m.total()}}}});
  }
  j["ranks"] = std::move(ranks);
  return j;
}

}  // namespace pipesim::cli
