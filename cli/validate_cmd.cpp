// `pipesim validate`: public, cited numbers against pipesim's predictions, with the error of each and the
// mean and worst: schedule bubbles the papers derive, parameter and FLOP counts the model papers report,
// the phases of DeepSeek's traced F&B pair (from a profile calibrated on that trace's kernel times only),
// and DeepSeek-V3's pre-training throughput. No case's number is an input to the prediction it checks.
// docs/validation.md §7 lists the cases and their sources.
#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "models/model.hpp"
#include "schedules/registry.hpp"
#include "sim/engine.hpp"
#include "sim/model_costs.hpp"
#include "sim/profile_fit.hpp"
#include "sim/step.hpp"
#include "traces/metrics.hpp"

namespace pipesim::cli {
namespace {

struct Case {
  std::string name, source, unit;
  double published = 0, predicted = 0;
  bool skipped = false;
  std::string note;
  double error() const { return (predicted - published) / published; }
};

void add(std::vector<Case>& out, std::string name, std::string source, std::string unit, double published,
         double predicted, bool skipped = false, std::string note = "") {
  out.push_back({std::move(name), std::move(source), std::move(unit), published, predicted, skipped, std::move(note)});
}

// Largest per-rank idle time of a schedule under uniform costs (ms), no communication.
double max_idle_ms(const char* schedule, GeneratorOptions size, const char* costs) {
  auto s = find_schedule(schedule).generate(size);
  auto timeline = simulate(s, uniform_costs(costs, s.stages, s.ranks));
  return static_cast<double>(compute_metrics(timeline).max_idle_ns()) / 1e6;
}

void schedule_cases(std::vector<Case>& out) {
  // p = 8, m = 32; F = I = 1 ms, W = 0.5 ms (B = 1.5 ms), the conditions under which each formula holds
  // (docs/closed-forms.md).
  const int p = 8, m = 32;
  const double F = 1, I = 1, W = 0.5, B = I + W;
  add(out, "1F1B bubble per rank", "Narayanan et al. SC21 (arXiv 2104.04473) §2.2.1: (p-1)(F+B)", "ms",
                 (p - 1) * (F + B), max_idle_ms("1f1b", {p, m, 1}, "F=1ms,I=1ms,W=0.5ms"));
  add(out, "interleaved 1F1B bubble, v=2", "SC21 §2.2.2: (p-1)(F+B)/v with chunks of 1/v", "ms",
                 (p - 1) * (F + B) / 2, max_idle_ms("interleaved-1f1b", {p, m, 2}, "F=0.5ms,I=0.5ms,W=0.25ms"));
  add(out, "ZB-H1 bubble per rank", "ZeroBubble (arXiv 2401.10241) §3.1: (p-1)(F+I-W)", "ms",
                 (p - 1) * (F + I - W), max_idle_ms("zb-h1", {p, m, 1}, "F=1ms,I=1ms,W=0.5ms"));
  add(out, "ZB-H2 bubble per rank", "ZeroBubble §3.1: (p-1)(F+I-2W)", "ms", (p - 1) * (F + I - 2 * W),
                 max_idle_ms("zb-h2", {p, m, 1}, "F=1ms,I=1ms,W=0.5ms"));
  // DualPipe with F&B = 2.5 ms (max(F, B) < F&B < F + B): (PP/2 - 1)(F&B + B - 3W) on the busiest-idle rank.
  add(out, "DualPipe largest idle", "deepseek-ai/DualPipe README, bubble table: (PP/2-1)(F&B+B-3W)", "ms",
                 (p / 2 - 1) * (2.5 + B - 3 * W), max_idle_ms("dualpipe", {p, m, 1}, "F=1ms,I=1ms,W=0.5ms,FB=2.5ms"));
}

void model_cases(std::vector<Case>& out) {
  struct Source {
    const char* model;
    const char* source;
  };
  for (auto [name, source] : {Source{"deepseek-v3", "DeepSeek-V3 report (arXiv 2412.19437) §1 / README"},
                              Source{"llama3-70b", "The Llama 3 Herd of Models (arXiv 2407.21783) Table 3"},
                              Source{"llama3-405b", "The Llama 3 Herd of Models Table 3"},
                              Source{"gpt3-175b", "Brown et al. (arXiv 2005.14165) Table 2.1"}}) {
    auto model = load_model(name);
    Shape shape;
    shape.seq = model.seq;
    auto totals = model_totals(model, shape);
    add(out, fmt::format("{} parameters", name), source, "B", model.published.total_params / 1e9, totals.params / 1e9);
    if (model.published.active_params > 0)
      add(out, fmt::format("{} active parameters", name), source, "B", model.published.active_params / 1e9,
                     totals.active_params / 1e9);
    if (model.published.training_gflops_per_token > 0)
      // In DeepSeek's convention: the main model without its MTP module, as its 671B count (docs/cost-model.md §4.1).
      add(out, fmt::format("{} training FLOPs per token", name),
          "ISCA'25 DeepSeek-V3 (arXiv 2505.09343) Table 2; --flops-convention deepseek", "GFLOP",
          model.published.training_gflops_per_token, flops_per_token(model, shape, FlopsConvention::DeepSeek) / 1e9);
  }
}

// The traced pair's phases, and DeepSeek-V3's pre-training throughput, at the profile calibrated from the
// trace's kernel times.
void deepseek_cases(std::vector<Case>& out, const std::string& trace) {
  std::vector<std::string> phases{"attn(F)", "mlp(F)",      "attn(B)",    "mlp(B)",      "attn(W)",
                                  "mlp(W)",  "dispatch(F)", "combine(F)", "dispatch(B)", "combine(B)"};
  const char* trace_source = "deepseek-ai/profile-data train.json (H800), mean GPU span per instance";
  struct Chunk {
    std::string name;
    std::vector<std::string> phases;
  };
  const std::vector<Chunk> chunks{
      {"DeepSeek chunk F alone (4 layers)", {"attn(F)", "mlp(F)", "dispatch(F)", "combine(F)"}},
      {"DeepSeek chunk B alone (4 layers)", {"attn(B)", "mlp(B)", "attn(W)", "mlp(W)", "dispatch(B)", "combine(B)"}},
      {"DeepSeek chunk I alone (4 layers)", {"attn(B)", "mlp(B)", "dispatch(B)", "combine(B)"}},
      {"DeepSeek chunk W alone (4 layers)", {"attn(W)", "mlp(W)"}}};
  const char* chunk_source = "derived from train.json: phase spans, compute slowdown under communication removed";
  const double throughput = 14.8e12 / (2664e3 * 3600) * 2048;  // tokens/s over 2048 GPUs
  const char* throughput_source =
      "DeepSeek-V3 report Table 1 and §4.1: 14.8T tokens in 2664K H800 GPU-hours, on 2048 GPUs";
  if (trace.empty()) {  // a path given is checked to exist where it is parsed
    std::string why = "no trace (--trace FILE or PIPESIM_DEEPSEEK_TRACE)";
    for (auto& p : phases) add(out, "DeepSeek pair " + p, trace_source, "us", 0, 0, true, why);
    add(out, "DeepSeek pair (4 layers)", trace_source, "us", 0, 0, true, why);
    for (auto& c : chunks) add(out, c.name, chunk_source, "us", 0, 0, true, why);
    add(out, "DeepSeek-V3 pre-training throughput", throughput_source, "M tokens/s", throughput / 1e6, 0, true,
                   "needs the trace-calibrated profile");
    return;
  }
  auto run = import_traces({read_kineto(trace)}, ImportOptions{});
  auto model = load_model("deepseek-v3");
  auto cluster = load_cluster("deepseek-h800");
  Plan plan;
  plan.schedule = "dualpipe";
  plan.pp = 16;
  plan.ep = 64;
  plan.microbatches = 120;
  plan.seq = model.seq;
  plan.precision = Precision::FP8;
  plan.selective_recompute = true;
  auto no_fallback = [](const char*, double) { return 0.0; };
  auto fit = fit_profile(run, moe_layer_phases(model, plan, cluster.profile, no_fallback), cluster.profile, true,
                         cluster.gpu.hbm_GBps, trace);
  auto check_phases = moe_layer_phases(model, plan, fit.profile, no_fallback);
  auto check = check_pair(check_phases, 4,
                          fit.profile.comm_compute_slowdown.value, &run);
  for (auto& name : phases)
    for (auto& p : check.phases)
      if (p.name == name) add(out, "DeepSeek pair " + name, trace_source, "us", p.measured_ns / 1e3, p.predicted_ns / 1e3);
  add(out, "DeepSeek pair (4 layers)", "train.json: first kernel start to last kernel end", "us",
                 check.measured_pair_ns / 1e3, check.pair.makespan_ns / 1e3);
  // The chunks the engine runs alone (F, B = I + W fused, I, W), 4 layers each: the stage costs are the sums
  // of these phases at the calibrated profile; the trace has them only inside the pair, so their measured
  // time is each phase's span with its compute slowdown removed, communication phases as they ran.
  auto measured = measure_phases(run, fit.profile.comm_compute_slowdown.value);
  auto idle_ns = [&](const std::string& name) {
    for (auto& m : measured)
      if (m.name == name) return m.idle_ns();
    throw Error("validate: the trace has no phase " + name);
  };
  auto predicted_ns = [&](const std::string& name) {
    for (auto& p : check_phases)
      if (p.name == name) return p.time_ns();
    throw Error("validate: the model has no phase " + name);
  };
  for (auto& c : chunks) {
    double m = 0, p = 0;
    for (auto& name : c.phases) {
      m += 4 * idle_ns(name);
      p += 4 * predicted_ns(name);
    }
    add(out, c.name, chunk_source, "us", m / 1e3, p / 1e3);
  }
  cluster.profile = fit.profile;
  auto step = simulate_step(model, Topology(cluster), plan);
  add(out, "DeepSeek-V3 pre-training throughput", throughput_source, "M tokens/s", throughput / 1e6,
                 step.tokens_per_s / 1e6, false, "PP16 DualPipe EP64 DP128, 120 x 4096 tokens; the final batch size");
}

// Megatron-LM's 1T GPT on 3072 A100s (384 DGX A100 nodes): 502 petaFLOP/s, 163 TFLOP/s per GPU, in their
// count (full attention, recomputation counted). The run as NVIDIA/Megatron-LM's
// examples/academic_paper_scripts/sc21/run_table_1.sh gives it: TP 8, PP 64, micro-batch 1, global batch
// 3072, sequence 2048, full (uniform) recomputation, non-interleaved 1F1B, FP16 (same peak as BF16), 2021
// kernels (no flash attention, dropout 0.1). The A100 profile is from published kernel benchmarks only.
void megatron_cases(std::vector<Case>& out) {
  auto model = load_model("megatron-1t");
  auto cluster = load_cluster("dgx-a100");
  cluster.nodes = 384;
  validate_cluster(cluster, "dgx-a100 at 384 nodes");
  Plan plan;
  plan.schedule = "1f1b";
  plan.pp = 64;
  plan.tp = 8;
  plan.global_batch = 3072;
  plan.seq = model.seq;
  plan.recompute = true;
  plan.flash_attention = false;
  plan.dropout = true;
  plan.flops_convention = FlopsConvention::Megatron;
  auto step = simulate_step(model, Topology(cluster), plan);
  add(out, "Megatron 1T, 3072 A100s: TFLOP/s per GPU",
      "Narayanan et al. SC21 (arXiv 2104.04473) abstract: 502 petaFLOP/s on 3072 GPUs", "TFLOP/s", 502e3 / 3072,
      step.mfu * cluster.gpu.bf16_tflops);
}

}  // namespace

void add_validate_command(CLI::App& app) {
  struct Args {
    std::string trace;  // default: $PIPESIM_DEEPSEEK_TRACE; without either the DeepSeek cases are skipped
    std::string format = "table";
    double max_mean = 0.10, max_worst = 0.20;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("validate", "Public, cited numbers against pipesim's predictions: errors, mean, worst");
  cmd->footer("Exit status 0 when the mean and worst absolute errors are within the bars, 2 when not.\n"
              "Cases and sources: docs/validation.md §7. The DeepSeek cases need the H800 trace (--trace).");
  cmd->add_option("--trace", args->trace,
                  "DeepSeek's H800 profiler trace (deepseek-ai/profile-data train.json); default: $PIPESIM_DEEPSEEK_TRACE")
      ->envname("PIPESIM_DEEPSEEK_TRACE")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-mean-error", args->max_mean, "Bar for the mean absolute error")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  cmd->add_option("--max-worst-error", args->max_worst, "Bar for the worst absolute error")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  cmd->add_option("--format,-f", args->format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  cmd->callback([args] {
    std::vector<Case> cases;
    schedule_cases(cases);
    model_cases(cases);
    megatron_cases(cases);
    deepseek_cases(cases, args->trace);
    double sum = 0, worst = 0;
    int counted = 0;
    for (auto& c : cases)
      if (!c.skipped) {
        sum += std::abs(c.error());
        worst = std::max(worst, std::abs(c.error()));
        ++counted;
      }
    double mean = counted ? sum / counted : 0;
    bool pass = mean <= args->max_mean && worst <= args->max_worst;
    if (args->format == "json") {
      auto rows = nlohmann::ordered_json::array();
      for (auto& c : cases) {
        nlohmann::ordered_json row{{"case", c.name}, {"source", c.source}, {"unit", c.unit}, {"published", c.published}};
        if (c.skipped) row["skipped"] = c.note;
        else row["predicted"] = c.predicted, row["error"] = c.error();
        rows.push_back(row);
      }
      fmt::print("{}\n", nlohmann::ordered_json{{"cases", rows}, {"counted", counted}, {"mean_abs_error", mean},
                                                {"worst_abs_error", worst}, {"pass", pass}}
                             .dump(1));
    } else {
      fmt::print("{:<44} {:>14} {:>14} {:>8}  {}\n", "case", "published", "predicted", "error", "source");
      for (auto& c : cases)
        fmt::print("{:<44} {:>14} {:>14} {:>8}  {}\n", c.name, fmt::format("{:.4g} {}", c.published, c.unit),
                   c.skipped ? "skipped" : fmt::format("{:.4g}", c.predicted),
                   c.skipped ? "-" : fmt::format("{:+.1f}%", 100 * c.error()), c.skipped ? c.note : c.source);
      fmt::print("\n{} cases counted: mean |error| {:.1f}% (bar {:.0f}%), worst {:.1f}% (bar {:.0f}%): {}\n", counted,
                 100 * mean, 100 * args->max_mean, 100 * worst, 100 * args->max_worst, pass ? "PASS" : "FAIL");
    }
    if (!pass) throw Error("validate: the errors exceed the bars", Error::Kind::Input);
  });
}

}  // namespace pipesim::cli
