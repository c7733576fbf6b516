// Plan flags and StepReport output (see plan_options.hpp).
#include "cli/plan_options.hpp"

#include <charconv>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/text.hpp"
#include "common/units.hpp"

namespace pipesim::cli {
namespace {

double gib(double bytes) { return bytes / 1073741824.0; }

std::string si(double v) {
  if (v >= 1e12) return fmt::format("{:.2f}T", v / 1e12);
  if (v >= 1e9) return fmt::format("{:.2f}B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  return fmt::format("{:.0f}", v);
}

int parse_int(const std::string& text, const std::string& field) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw Error(fmt::format("{}: '{}' is not an integer", field, text));
  return value;
}

}  // namespace

void PlanOptions::add_options(CLI::App& cmd, bool with_schedule_size) {
  cmd.add_option("--model", model, "Model preset (deepseek-v3, llama3-70b, gpt3-175b, ...) or a JSON file");
  cmd.add_option("--cluster", cluster, "Cluster preset (deepseek-h800, dgx-a100, dgx-h100, hgx-h200) or a JSON file")
      ->capture_default_str();
  if (with_schedule_size) {
    cmd.add_option("--pp", plan.pp, "Pipeline ranks")->capture_default_str();
    cmd.add_option("--microbatches,-m", plan.microbatches, "Micro-batches per step per pipeline (or --global-batch)");
    cmd.add_option("--virtual-stages,-v", plan.virtual_stages, "Model chunks per rank for interleaved-1f1b")
        ->capture_default_str();
  }
  cmd.add_option("--tp", plan.tp, "Tensor parallel size")->capture_default_str();
  cmd.add_option("--ep", plan.ep, "Expert parallel size (inside the data-parallel group)")->capture_default_str();
  cmd.add_option("--dp", plan.dp, "Data parallel size (default: all GPUs of the cluster)");
  cmd.add_option("--micro-batch-size", plan.micro_batch_size, "Sequences per micro-batch")->capture_default_str();
  cmd.add_option("--seq", plan.seq, "Sequence length (default: the model's)");
  cmd.add_option("--global-batch", plan.global_batch, "Sequences per step (instead of --microbatches)");
  cmd.add_option("--layers-per-stage", layers_per_stage,
                 "Transformer layers of each stage along a micro-batch's path, e.g. 3,4,4,4 (default: even)");
  cmd.add_option("--placement", plan.placement, "Rank order, innermost first: tp-dp-pp (Megatron) or tp-pp-dp")
      ->capture_default_str();
  cmd.add_option("--precision", plan.precision, "GEMM precision: bf16 or fp8")->capture_default_str();
  cmd.add_flag("--recompute", plan.recompute, "Full activation recomputation");
  cmd.add_flag("--selective-recompute", plan.selective_recompute,
               "Recompute norms and MLA K/V up-projections in the backward instead of keeping them (DeepSeek-V3)");
  cmd.add_flag("--full", plan.full, "Simulate every GPU (every data-parallel replica), not one per stage");
  cmd.add_option("--straggler", stragglers, "GPU=FACTOR: that GPU computes FACTOR times slower (use with --full)");
}

Plan PlanOptions::resolved_plan() const {
  Plan p = plan;
  if (!layers_per_stage.empty()) {
    for (auto& count : split(layers_per_stage)) p.layers_per_stage.push_back(parse_int(count, "--layers-per-stage"));
  }
  return p;
}

std::vector<double> PlanOptions::slowdowns(int gpus) const {
  if (stragglers.empty()) return {};
  std::vector<double> out(static_cast<std::size_t>(gpus), 1.0);
  for (auto& s : stragglers) {
    auto eq = s.find('=');
    if (eq == std::string::npos) throw Error(fmt::format("--straggler: '{}' should be GPU=FACTOR, e.g. 17=1.3", s));
    int gpu = parse_int(s.substr(0, eq), "--straggler");
    double factor = 0;
    auto text = s.substr(eq + 1);
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), factor);
    if (ec != std::errc() || end != text.data() + text.size() || !(factor > 0))
      throw Error(fmt::format("--straggler: factor '{}' must be a positive number", text));
    if (gpu < 0 || gpu >= gpus) throw Error(fmt::format("--straggler: GPU {} is not in 0..{}", gpu, gpus - 1));
    out[static_cast<std::size_t>(gpu)] = factor;
  }
  return out;
}

std::string describe_plan(const StepReport& r, bool with_schedule) {
  auto& p = r.plan.plan;
  return fmt::format("{} on {}: {}PP{} DP{} EP{} TP{}, {} micro-batches x {} x {} tokens (global batch {}), {}{}{}",
                     r.model, r.cluster, with_schedule ? p.schedule + ", " : "", p.pp, p.dp, p.ep, p.tp,
                     p.microbatches, p.micro_batch_size, p.seq, p.global_batch, p.precision,
                     p.recompute ? ", full recomputation" : "", p.selective_recompute ? ", selective recomputation" : "");
}

std::string step_report_table(const StepReport& r) {
  std::string out = describe_plan(r) + "\n";
  out += r.simulated_replicas > 1 ? fmt::format("simulated all {} data-parallel replicas (--full)\n", r.simulated_replicas)
                                  : "simulated one representative GPU per pipeline stage (the plan is symmetric; --full "
                                    "simulates every GPU)\n";
  out += fmt::format("step {}   pipeline {}   tokens/s {}   tokens/day {}\n", format_duration(r.step_ns),
                     format_duration(r.pipeline_ns), si(r.tokens_per_s), si(r.tokens_per_day));
  out += fmt::format("MFU {:.1f}% (causal attention) / {:.1f}% (full attention)   bubble rate {:.4f}\n",
                     100 * r.mfu_causal, 100 * r.mfu_full, r.bubble_rate);
  if (r.compute_comm_ratio > 0)
    out += fmt::format("EP compute:communication {:.2f} : 1\n", r.compute_comm_ratio);
  out += fmt::format("exposed communication (most on any rank; DP on the last to finish): EP {}, PP {}, DP {}\n",
                     format_duration(r.exposed_ep_ns), format_duration(r.exposed_pp_ns), format_duration(r.exposed_dp_ns));
  out += fmt::format("\nmemory per GPU (GiB, capacity {:.0f}):\n{:>4} {:>9} {:>9} {:>10} {:>12} {:>9}  {}\n",
                     gib(r.capacity_bytes), "rank", "params", "grads", "optimizer", "activations", "total", "");
  for (std::size_t i = 0; i < r.memory.size(); ++i) {
    auto& m = r.memory[i];
    out += fmt::format("{:>4} {:>9.2f} {:>9.2f} {:>10.2f} {:>12.2f} {:>9.2f}  {}\n", i, gib(m.params), gib(m.grads),
                       gib(m.optimizer), gib(m.activations), gib(m.total()),
                       m.total() <= r.capacity_bytes ? "" : "DOES NOT FIT");
  }
  if (!r.fits) out += "this plan does not fit in GPU memory: try --recompute, more pipeline or expert ranks, or fewer micro-batches in flight\n";
  return out;
}

std::string step_comparison_table(const std::vector<StepReport>& reports) {
  std::string out = fmt::format("{:<17} {:>12} {:>10} {:>8} {:>8} {:>8} {:>11}  {}\n", "schedule", "step", "tokens/s",
                                "MFU", "bubble", "EP c:c", "peak GiB", "fits");
  for (auto& r : reports) {
    double peak = 0;
    for (auto& m : r.memory) peak = std::max(peak, m.total());
    out += fmt::format("{:<17} {:>12} {:>10} {:>7.1f}% {:>8.4f} {:>8.2f} {:>11.1f}  {}\n", r.plan.plan.schedule,
                       format_duration(r.step_ns), si(r.tokens_per_s), 100 * r.mfu_causal, r.bubble_rate,
                       r.compute_comm_ratio, gib(peak), r.fits ? "yes" : "NO");
  }
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
               {"precision", p.precision}, {"recompute", p.recompute}, {"selective_recompute", p.selective_recompute}};
  j["simulated_replicas"] = r.simulated_replicas;
  j["step_us"] = static_cast<double>(r.step_ns) / 1e3;
  j["pipeline_us"] = static_cast<double>(r.pipeline_ns) / 1e3;
  j["tokens_per_s"] = r.tokens_per_s;
  j["tokens_per_day"] = r.tokens_per_day;
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
