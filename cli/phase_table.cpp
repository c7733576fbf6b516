// The phase view (see phase_table.hpp).
#include "cli/phase_table.hpp"

#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "models/model.hpp"
#include "sim/model_costs.hpp"
#include "sim/profile_fit.hpp"
#include "topologies/topology.hpp"

namespace pipesim::cli {

ClusterSpec cluster_of(const PlanOptions& options) {
  auto cluster = load_cluster(options.cluster);
  if (!options.hw_profile.empty()) cluster.profile = load_hw_profile(options.hw_profile);
  if (options.nodes > 0) {
    cluster.nodes = options.nodes;
    validate_cluster(cluster, "--nodes");
  }
  return cluster;
}

std::vector<PhaseCost> model_phases(const PlanOptions& options, const ClusterSpec& cluster) {
  auto model = load_model(options.model.empty() ? "deepseek-v3" : options.model);
  auto plan = options.plan;
  plan.precision = parse_precision(options.precision, "--precision");
  if (plan.seq == 0) plan.seq = model.seq;
  Topology topology(cluster);
  std::vector<int> group;  // the first EP group of the cluster
  for (int g = 0; g < plan.ep && g < cluster.total_gpus(); ++g) group.push_back(g);
  return moe_layer_phases(model, plan, cluster.profile, topology_all_to_all(topology, model, std::move(group)));
}

ImportedRun import_for_phases(const std::vector<std::string>& files) {
  std::vector<KinetoTrace> traces;
  for (auto& f : files) traces.push_back(read_kineto(f));
  return import_traces(std::move(traces), ImportOptions{});
}

std::string phase_table(const std::vector<PhaseCost>& phases, const ClusterSpec& cluster, int layers,
                        const ImportedRun* measured, bool json) {
  double slowdown = cluster.comm_compute_slowdown();
  auto check = check_pair(phases, layers, slowdown, measured);
  auto& pair = check.pair;
  double measured_pair = check.measured_pair_ns;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::string text = fmt::format("one MoE layer on {} (profile {}), overlapped pair of {} layer(s), compute x{:.3f} "
                                 "while communication runs\n",
                                 cluster.gpu.name, cluster.profile.name, layers, slowdown);
  text += fmt::format("  {:<12} {:>10} {:>10} {:>10} {:>10} {:>8} {:>12} {:>12} {:>8}\n", "phase", "gemm us", "attn us",
                      "memory us", "comm us", "kernels", "predicted us", "measured us", "error");
  for (std::size_t i = 0; i < phases.size(); ++i) {
    auto& p = phases[i];
    double pred = check.phases[i].predicted_ns / 1e3, meas = check.phases[i].measured_ns / 1e3;
    if (meas <= 0) meas = NAN;  // a phase whose kernels all took no time has nothing to compare with
    double error = std::isnan(meas) ? NAN : (pred - meas) / meas;
    text += fmt::format("  {:<12} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>8.0f} {:>12.1f} {:>12} {:>8}\n", p.name,
                        p.gemm_ns / 1e3, p.attention_ns / 1e3, p.memory_ns / 1e3, p.comm_ns / 1e3, p.kernels, pred,
                        std::isnan(meas) ? "-" : fmt::format("{:.1f}", meas),
                        std::isnan(error) ? "-" : fmt::format("{:+.1f}%", 100 * error));
    nlohmann::ordered_json row{{"phase", p.name},      {"gemm_us", p.gemm_ns / 1e3},  {"attention_us", p.attention_ns / 1e3},
                               {"memory_us", p.memory_ns / 1e3}, {"launch_us", p.launch_ns / 1e3},
                               {"comm_us", p.comm_ns / 1e3}, {"kernels", p.kernels}, {"predicted_us", pred}};
    if (!std::isnan(meas)) row["measured_us"] = meas, row["error"] = error;
    rows.push_back(row);
  }
  double pair_error = measured_pair > 0 ? (pair.makespan_ns - measured_pair) / measured_pair : NAN;
  text += fmt::format("  {:<12} {:>65.1f} {:>12} {:>8}\n", "pair", pair.makespan_ns / 1e3,
                      measured_pair > 0 ? fmt::format("{:.1f}", measured_pair / 1e3) : "-",
                      std::isnan(pair_error) ? "-" : fmt::format("{:+.1f}%", 100 * pair_error));
  text += fmt::format("  compute stalls in the predicted pair: {:.1f} us\n", pair.compute_stall_ns / 1e3);
  text += "  (measured: each phase's GPU span, first kernel start to last kernel end, mean per instance)\n";
  if (!json) return text;
  nlohmann::ordered_json j{{"gpu", cluster.gpu.name}, {"profile", cluster.profile.name}, {"layers", layers},
                           {"slowdown", slowdown},     {"phases", rows}, {"pair_predicted_us", pair.makespan_ns / 1e3},
                           {"pair_stall_us", pair.compute_stall_ns / 1e3}};
  if (measured_pair > 0) j["pair_measured_us"] = measured_pair / 1e3, j["pair_error"] = pair_error;
  return j.dump(1) + "\n";
}

std::string achieved_rates(const std::vector<PhaseCost>& phases, const ImportedRun& measured, bool json) {
  auto rate = [](double amount, double ns, double scale) { return ns > 0 && amount > 0 ? amount / ns / scale : NAN; };
  auto cell = [](double v) { return std::isnan(v) ? std::string("-") : fmt::format("{:.1f}", v); };
  std::string text = "achieved per phase (the model's FLOPs and bytes over the phase's kernel time):\n";
  text += fmt::format("  {:<12} {:>12} {:>12} {:>12} {:>12}\n", "phase", "GEMM TFLOP/s", "attn TFLOP/s", "memory GB/s",
                      "a2a GB/s");
  auto rows = nlohmann::ordered_json::array();
  for (auto& m : measure_phases(measured, 1.0)) {
    const PhaseCost* c = nullptr;
    for (auto& p : phases)
      if (p.name == m.name) c = &p;
    if (!c) continue;
    double flops = 0;
    for (auto [f, x] : c->gemms) flops += f;
    double gemm = rate(flops, m.gemm_ns, 1e3), attention = rate(c->attention_flops, m.attention_ns, 1e3),
           memory = rate(c->memory_bytes, m.memory_ns, 1), comm = rate(c->comm_bytes, m.comm_ns, 1);
    text += fmt::format("  {:<12} {:>12} {:>12} {:>12} {:>12}\n", m.name, cell(gemm), cell(attention), cell(memory), cell(comm));
    nlohmann::ordered_json row{{"phase", m.name}};
    for (auto [key, v] : {std::pair{"gemm_tflops", gemm}, std::pair{"attention_tflops", attention},
                          std::pair{"memory_GBps", memory}, std::pair{"all_to_all_GBps", comm}})
      if (!std::isnan(v)) row[key] = v;
    rows.push_back(row);
  }
  return json ? rows.dump(1) + "\n" : text;
}

}  // namespace pipesim::cli
