// Plan flags and StepReport output (see plan_options.hpp).
#include "cli/plan_options.hpp"

#include <charconv>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/text.hpp"
#include "common/units.hpp"

namespace pipesim::cli {
namespace {

int parse_int(const std::string& text, const std::string& field) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw Error(fmt::format("{}: '{}' is not an integer", field, text));
  return value;
}

}  // namespace

void PlanOptions::add_options(CLI::App& cmd) {
  cmd.add_option("--model", model, "Model preset (deepseek-v3, llama3-70b, gpt3-175b, ...) or a JSON file");
  cmd.add_option("--cluster", cluster, "Cluster preset (deepseek-h800, dgx-a100, dgx-h100, hgx-h200) or a JSON file")
      ->capture_default_str();
  cmd.add_option("--hw-profile", hw_profile,
                 "Hardware profile (preset or JSON, e.g. from `pipesim calibrate --trace`): measured GEMM, attention, "
                 "memory and all-to-all rates instead of the cluster's default");
  cmd.add_option("--nodes", nodes, "Nodes of the cluster (default: the preset's), e.g. 384 DGX A100 for 3072 GPUs")
      ->check(CLI::Range(1, 1'000'000));
  cmd.add_option("--tp", plan.tp, "Tensor parallel size")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd.add_option("--ep", plan.ep, "Expert parallel size (inside the data-parallel group)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd.add_option("--dp", plan.dp, "Data parallel size (default: all GPUs of the cluster)")->check(CLI::Range(1, 1 << 24));
  cmd.add_option("--micro-batch-size", plan.micro_batch_size, "Sequences per micro-batch")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd.add_option("--seq", plan.seq, "Sequence length (default: the model's)")->check(CLI::Range(1, 1 << 24));
  cmd.add_option("--global-batch", plan.global_batch, "Sequences per step (instead of --microbatches)")
      ->check(CLI::Range(1, 1 << 30));
  cmd.add_option("--layers-per-stage", layers_per_stage,
                 "Transformer layers of each stage along a micro-batch's path, e.g. 3,4,4,4 (default: even)");
  cmd.add_option("--placement", placement, "Rank order, innermost first: tp-dp-pp (Megatron) or tp-pp-dp")
      ->capture_default_str();
  cmd.add_option("--precision", precision, "GEMM precision: bf16 or fp8")->capture_default_str();
  cmd.add_option("--adam-moments", adam_moments,
                 "Adam moment format: fp32, bf16 (DeepSeek-V3 keeps them in BF16), or auto (bf16 with fp8)")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--flops-convention", flops_convention,
                 "How MFU counts FLOPs: pipesim (causal attention, MTP included), deepseek (causal, no MTP), "
                 "megatron (SC21: full attention, recomputation counted), palm (model FLOPs: full attention)")
      ->check(CLI::IsMember({"pipesim", "deepseek", "megatron", "palm"}))
      ->capture_default_str();
  cmd.add_flag("--recompute", plan.recompute, "Full activation recomputation");
  cmd.add_flag("--selective-recompute", plan.selective_recompute,
               "Recompute norms and MLA K/V up-projections in the backward instead of keeping them (DeepSeek-V3)");
  cmd.add_flag("!--no-flash-attention", plan.flash_attention,
               "Attention without flash: the s x s softmax is kept for the backward (GPT-3-era Megatron runs)");
  cmd.add_flag("--sequence-parallel", plan.sequence_parallel,
               "Megatron sequence parallelism: norms and dropout split over --tp; each all-reduce is a "
               "reduce-scatter and an all-gather");
  cmd.add_flag("--dropout", plan.dropout, "Dropout after attention and MLP: its masks are kept for the backward");
  cmd.add_flag("--overlap-grad-reduce", plan.overlap_grad_reduce,
               "Reduce-scatter each layer's gradients as the last backward frees them (Megatron-LM's "
               "--overlap-grad-reduce) instead of after the pipeline (DeepSeek-V3 does not say; off)");
  cmd.add_flag("--full", plan.full, "Simulate every GPU (every data-parallel replica), not one per stage");
  cmd.add_option("--straggler", stragglers, "GPU=FACTOR: that GPU computes FACTOR times slower (use with --full)");
}

Plan PlanOptions::resolved_plan(const ScheduleSize& size) const {
  Plan p = plan;
  p.precision = parse_precision(precision, "--precision");
  p.adam_moment_bytes = adam_moments == "fp32" ? 4 : adam_moments == "bf16" ? 2 : 0;
  p.placement = parse_placement(placement, "--placement");
  p.flops_convention = parse_flops_convention(flops_convention, "--flops-convention");
  size.apply(p);
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

}  // namespace pipesim::cli
