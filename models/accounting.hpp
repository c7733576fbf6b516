// Per-layer accounting, split into F (forward), I (backward for input) and W (backward for weights): the
// operators of each layer with their FLOPs, HBM bytes, activation memory and parameters, for dense
// attention (MHA/GQA), MLA, dense MLPs (GELU, SwiGLU), MoE (router, shared and routed experts), embedding,
// output head and MTP. Matmul Y = XA costs 2mnk in each of F, I (dX) and W (dA); attention's score and
// value products have no weights, so I does their work twice and W none (ZeroBubble §2). Activation
// memory follows Korthikanti et al. (2022): F keeps what the backward needs (held until I); of that, W
// needs each linear layer's input and output gradient (held from I until W), 32sbh for a GPT layer.
// FP8 training adds the quantization kernels around each GEMM, MLA its RoPE and query/key assembly, MoE
// its token permutation (docs/cost-model.md §12).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/pass_kind.hpp"
#include "models/model.hpp"

namespace pipesim {

struct Shape {
  int micro_batch = 1;            // sequences per micro-batch
  int seq = 4096;
  int tp = 1;                     // tensor parallel: splits heads and FFN width
  int ep = 1;                     // expert parallel: splits routed experts (tokens spread evenly)
  bool flash_attention = true;    // no s^2 attention activations kept
  bool sequence_parallel = false; // Megatron SP: norms and dropout hold 1/tp of the sequence
  bool dropout = false;           // Korthikanti's dropout masks (GPT-3-era training)
  bool causal = true;             // attention FLOPs for the causal half; false: the full s^2 (Megatron's count)
  bool recompute = false;         // full recomputation: F keeps only the layer input, I re-runs F first
  double bytes_per_element = 2;   // activations and weights in BF16
  bool fp8_linear_inputs = false; // cache linear layers' inputs in FP8 for the backward (DeepSeek-V3 §3.3.3)
  bool selective_recompute = false;  // recompute norms and MLA's K/V up-projection in I (DeepSeek-V3 §3.3.2)
  double dispatch_bytes_per_element = 1;  // FP8 dispatch (DeepSeek-V3)
  double combine_bytes_per_element = 2;   // BF16 combine
  double tokens() const { return static_cast<double>(micro_batch) * seq; }
};

enum class Part { Attention, Mlp, Router, Experts, SharedExperts, Embedding, Head, MtpProjection };

struct OpCost {
  std::string name;
  Part part = Part::Attention;
  double m = 0, n = 0, k = 0;     // GEMM shape (rows = tokens, out, in); 0 for memory-bound operators
  PerPass<double> flops;          // F, I, W
  PerPass<double> bytes;          // HBM traffic
  PerPass<double> kernels;        // GPU kernels launched (each costs the profile's launch gap)
  bool fused_attention = false;   // flash attention: priced at the profile's attention rates, not as GEMMs
  double saved_until_I = 0;       // activation bytes kept from F until I
  double saved_until_W = 0;       // of those, bytes still kept from I until W (includes output gradients)
  double params = 0;              // weights this GPU holds
};

enum class LayerKind { Embedding, Dense, Moe, Head, Mtp };

struct LayerCost {
  LayerKind kind = LayerKind::Dense;
  std::vector<OpCost> ops;
  double params_total = 0;        // the whole layer, unsharded
  double params_active = 0;       // used per token (MoE: k routed + shared experts)
  double dispatch_bytes = 0;      // MoE all-to-all bytes one GPU sends per micro-batch, forward
  double combine_bytes = 0;

  double flops(PassKind pass) const;
  double saved_until_I() const;
  double saved_until_W() const;
  double params() const;          // this GPU's
};

// The layers of a model in forward order: embedding, transformer layers, head, MTP modules.
std::vector<LayerCost> model_layers(const ModelSpec& model, const Shape& shape);

struct ModelTotals {
  double params = 0;              // total, including embedding and MTP
  double active_params = 0;       // per token
  double flops_per_token = 0;     // training (F + I + W), per token, with the shape's attention convention
};
ModelTotals model_totals(const ModelSpec& model, const Shape& shape);

// How a paper counts training FLOPs per token for MFU (docs/cost-model.md §4.1). Matrix products only in
// every convention; they differ in the attention count, whether MTP modules count and whether recomputed
// work counts.
enum class FlopsConvention {
  Pipesim,   // causal attention, embedding to MTP, recomputation not counted
  DeepSeek,  // causal attention, the main model only (no MTP), recomputation not counted
  Megatron,  // Narayanan et al. SC21: full attention, recomputation counted (their teraFLOP/s per GPU)
  Palm,      // model FLOPs (Chowdhery et al. PaLM App. B; Korthikanti et al. MFU): full attention, no recomputation
};
struct FlopsRules {
  bool causal = true, mtp = true, recompute = false;
};
FlopsRules flops_rules(FlopsConvention convention);
std::string_view to_string(FlopsConvention convention);  // "pipesim", "deepseek", "megatron", "palm"
FlopsConvention parse_flops_convention(std::string_view text, std::string_view field);  // throws Error naming field
// Training FLOPs per token (F + I + W) as `convention` counts them. `shape` gives the sizes and, where the
// convention counts recomputation, what the plan recomputes; its causal flag is replaced by the convention's.
double flops_per_token(const ModelSpec& model, Shape shape, FlopsConvention convention);

}  // namespace pipesim
