// Operators of each layer kind and their F/I/W costs (see accounting.hpp). Norms, activation functions and
// softmax are memory-bound: they move bytes but count no FLOPs, as MFU conventions count only matmuls.
#include "models/accounting.hpp"

#include <cmath>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

constexpr PassKind F = PassKind::F, I = PassKind::I, W = PassKind::W;

class Builder {
 public:
  Builder(const Shape& shape, LayerCost& layer) : sh_(shape), layer_(layer), e_(shape.bytes_per_element) {}

  // Y = X A with X: tokens x in, A: in x out. `held` is the share of A this GPU holds.
  // `input_shared`: the input is a tensor another linear already keeps for the backward (one normalized
  // input feeding two projections is cached once, docs/cost-model.md §3).
  void linear(const char* name, Part part, double tokens, double in, double out, double held = 1.0,
              double gemm_rows = -1, bool input_shared = false) {
    OpCost op;
    op.name = name;
    op.part = part;
    op.m = gemm_rows >= 0 ? gemm_rows : tokens;
    op.n = out;
    op.k = in;
    double f = 2 * tokens * in * out;
    op.flops[F] = op.flops[I] = op.flops[W] = f;
    double weights = in * out * held * e_, io = tokens * (in + out) * e_;
    op.bytes[F] = weights + io;
    op.bytes[I] = weights + io;
    op.bytes[W] = io + in * out * held * 4;  // FP32 gradient accumulation
    double cached = sh_.fp8_linear_inputs ? 1.0 : e_;
    double input = input_shared ? 0 : tokens * in * cached;
    op.saved_until_I = input;                           // the input, for W
    op.saved_until_W = input + tokens * out * e_;       // the input and the output gradient
    op.params = in * out * held;
    op.kernels = {1, 1, 1};
    layer_.ops.push_back(op);
    if (sh_.fp8_linear_inputs) fp8_quantization(name, part, tokens, in, out, held, gemm_rows >= 0);
  }

  // FP8 GEMMs with fine-grained scaling (DeepSeek-V3 §3.3): F quantizes its input (read BF16, write FP8);
  // I quantizes the output gradient and casts the weight transposed for dgrad; wgrad needs the input
  // transposed and the output gradient cast transposed (docs/cost-model.md §12).
  // Where W's operands are made differs by kernel library: plain linears fuse the transposed cast of the
  // output gradient into I's quantization and transpose the input there too, so their W runs GEMMs only;
  // grouped expert GEMMs prepare both in W (both as DeepSeek's H800 trace shows, docs/cost-model.md §12).
  void fp8_quantization(const char* name, Part part, double rows, double in, double out, double held, bool grouped) {
    OpCost q;
    q.name = std::string(name) + ".fp8_cast";
    q.part = part;
    q.bytes[F] = 3 * rows * in;
    q.bytes[I] = 3 * rows * out + 3 * in * out * held;
    double wgrad_operands = 2 * rows * in + 3 * rows * out;
    q.bytes[grouped ? W : I] += wgrad_operands;
    q.kernels = grouped ? PerPass<double>{{2, 2, 2}} : PerPass<double>{{2, 4, 0}};
    layer_.ops.push_back(q);
  }

  // A memory-bound operator with explicit bytes and kernels per pass and no kept activations.
  void memory(std::string name, Part part, PerPass<double> bytes, PerPass<double> kernels) {
    OpCost op;
    op.name = std::move(name);
    op.part = part;
    op.bytes = bytes;
    op.kernels = kernels;
    layer_.ops.push_back(op);
  }

  std::vector<OpCost>& ops() { return layer_.ops; }
  // Sequence parallelism keeps a column-parallel linear's input (the norm's output) as each rank's share
  // of the sequence and gathers it again for the backward (Korthikanti et al. §4.2.2).
  void sequence_sharded_input(std::string_view name, double tokens, double in) {
    if (!sh_.sequence_parallel || sh_.tp <= 1) return;
    auto& op = last(name);
    double cached = sh_.fp8_linear_inputs ? 1.0 : e_, saved = tokens * in * cached * (1 - 1.0 / sh_.tp);
    op.saved_until_I -= saved;
    op.saved_until_W -= saved;
  }
  OpCost& last(std::string_view name) {
    for (auto it = layer_.ops.rbegin(); it != layer_.ops.rend(); ++it)
      if (it->name == name) return *it;
    throw Error(fmt::format("accounting: no operator {}", name), Error::Kind::Internal);
  }

  // A memory-bound operator over `width` values per token that keeps `saved` values per token for I.
  // Norms (they hold parameters) are recomputed in I under selective recomputation instead of kept.
  // `sequence_split`: outside the tensor-parallel regions (norms, dropout), which sequence parallelism
  // splits over the tp ranks (Korthikanti et al. §4.2.2).
  void elementwise(const char* name, Part part, double tokens, double width, double saved, double params = 0,
                   bool sequence_split = false) {
    if (sequence_split && sh_.sequence_parallel) tokens /= sh_.tp;  // each rank holds its share of the tokens
    OpCost op;
    op.name = name;
    op.part = part;
    op.bytes[F] = 2 * tokens * width * e_;
    op.bytes[I] = 3 * tokens * width * e_;
    op.saved_until_I = tokens * saved * e_;
    if (sh_.selective_recompute && params > 0) {
      op.saved_until_I = 0;
      op.bytes[I] += op.bytes[F];
    }
    op.params = params;
    op.kernels = {1, 1, 0};
    layer_.ops.push_back(op);
  }

  // Softmax(Q K^T) V over the local heads; no weights: I does both products' input gradients (twice F).
  void attention_core(double tokens, double heads, double kv_heads, double dqk, double dv) {
    double keys = sh_.causal ? (sh_.seq + 1) / 2.0 : sh_.seq;  // keys a query attends to, on average
    OpCost op;
    op.name = sh_.flash_attention ? "attention.core" : "attention.core_unfused";
    op.fused_attention = sh_.flash_attention;
    op.part = Part::Attention;
    op.flops[F] = 2 * tokens * keys * heads * (dqk + dv);
    op.flops[I] = 2 * op.flops[F];
    double qkv = tokens * (heads * dqk + kv_heads * (dqk + dv)) * e_;
    op.bytes[F] = qkv + tokens * heads * dv * e_;
    op.bytes[I] = 2 * op.bytes[F];
    op.saved_until_I = qkv;
    if (!sh_.flash_attention) {  // softmax output (2 bytes), and with dropout its mask (1) and output (2)
      op.saved_until_I += tokens * heads * sh_.seq * (sh_.dropout ? 5.0 : 2.0) * (e_ / 2);
      // Unfused, the scores round-trip through HBM: F writes them, the softmax reads and writes, the value
      // product reads (4 passes over T·heads·keys); I reads and writes each of those gradients (6).
      op.bytes[F] += 4 * tokens * heads * keys * e_;
      op.bytes[I] += 6 * tokens * heads * keys * e_;
    }
    // The dropout mask after the output projection covers the full hidden size (1 byte each), replicated
    // over tp ranks unless sequence parallelism splits it (Korthikanti et al. Table 2).
    if (sh_.dropout) op.saved_until_I += tokens * heads * dv * (sh_.sequence_parallel ? 1 : sh_.tp);
    // Flash: one forward kernel, three backward (preprocess, main, dQ conversion). Unfused: two GEMMs and
    // the softmax forward, their five gradients backward; priced at the GEMM rate (sim/op_time.cpp).
    op.kernels = sh_.flash_attention ? PerPass<double>{{1, 3, 0}} : PerPass<double>{{3, 5, 0}};
    layer_.ops.push_back(op);
  }

 private:
  const Shape& sh_;
  LayerCost& layer_;
  double e_;
};

int split(int value, int parts, const char* what) {
  if (parts < 1 || value % parts != 0)
    throw Error(fmt::format("{} {} does not split evenly over {} ways", what, value, parts));
  return value / parts;
}

// Attention block (norm, projections, core) of one layer; returns its full (unsharded) parameter count.
double attention(const ModelSpec& m, const Shape& sh, Builder& b) {
  double T = sh.tokens(), h = m.hidden;
  b.elementwise("attention.norm", Part::Attention, T, h, h, h, true);
  if (m.attention == AttentionKind::Mla) {
    auto& a = *m.mla;
    double H = split(m.heads, sh.tp, "heads"), dqk = a.qk_nope_head_dim + a.qk_rope_head_dim;
    double params = 0;
    if (a.q_lora_rank > 0) {
      b.linear("attention.q_down", Part::Attention, T, h, a.q_lora_rank);
      b.sequence_sharded_input("attention.q_down", T, h);
      b.elementwise("attention.q_norm", Part::Attention, T, a.q_lora_rank, a.q_lora_rank, a.q_lora_rank);
      b.linear("attention.q_up", Part::Attention, T, a.q_lora_rank, H * dqk);
      params += h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * m.heads * dqk;
    } else {
      b.linear("attention.q", Part::Attention, T, h, H * dqk);
      b.sequence_sharded_input("attention.q", T, h);
      params += h * m.heads * dqk;
    }
    b.linear("attention.kv_down", Part::Attention, T, h, a.kv_lora_rank + a.qk_rope_head_dim, 1.0, -1,
             true);  // the same normalized input as the query projection
    b.elementwise("attention.kv_norm", Part::Attention, T, a.kv_lora_rank, a.kv_lora_rank, a.kv_lora_rank);
    b.linear("attention.kv_up", Part::Attention, T, a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim));
    // RoPE on the rope part of q and k, then q and k assembled per head at the full head dim.
    b.memory("attention.rope_assemble", Part::Attention, {4 * T * H * dqk * sh.bytes_per_element,
             4 * T * H * dqk * sh.bytes_per_element, 0}, {4, 4, 0});
    b.attention_core(T, H, H, dqk, a.v_head_dim);
    if (sh.selective_recompute) {  // keep the latent, rebuild K and V from it in I
      auto& ops = b.ops();
      auto& up = ops[ops.size() - (sh.fp8_linear_inputs ? 4 : 3)];
      up.flops[I] += up.flops[F];
      up.bytes[I] += up.bytes[F];
      ops.back().saved_until_I = T * (H * dqk + a.kv_lora_rank + a.qk_rope_head_dim) * sh.bytes_per_element;
    }
    b.linear("attention.out", Part::Attention, T, H * a.v_head_dim, h);
    return params + h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank +
           a.kv_lora_rank * m.heads * (a.qk_nope_head_dim + a.v_head_dim) + m.heads * a.v_head_dim * h + h;
  }
  double H = split(m.heads, sh.tp, "heads"), KV = m.kv_heads >= sh.tp ? split(m.kv_heads, sh.tp, "kv_heads") : 1;
  double d = m.head_dim;
  b.linear("attention.qkv", Part::Attention, T, h, (H + 2 * KV) * d);
  b.sequence_sharded_input("attention.qkv", T, h);
  b.attention_core(T, H, KV, d, d);
  b.linear("attention.out", Part::Attention, T, H * d, h);
  return h * (m.heads + 2.0 * m.kv_heads) * d + m.heads * d * h + h;
}

// A dense MLP of width `ffn` (already split by TP) over `tokens`; returns its full parameter count.
double mlp(MlpKind kind, Part part, double tokens, double h, double ffn, double held, Builder& b,
           double gemm_rows = -1, bool input_shared = false, bool fp8_swiglu_cache = false) {
  if (kind == MlpKind::SwiGLU) {
    b.linear("mlp.gate_up", part, tokens, h, 2 * ffn, held, gemm_rows, input_shared);
    b.elementwise("mlp.swiglu", part, tokens, 2 * ffn, 2 * ffn);
    b.linear("mlp.down", part, tokens, ffn, h, held, gemm_rows);
    if (fp8_swiglu_cache) {
      // DeepSeek-V3 §3.3.3: the SwiGLU input is cached in FP8 and its output recomputed in I, so the down
      // projection's input is not kept from F (docs/cost-model.md §3).
      auto& act = b.last("mlp.swiglu");
      act.saved_until_I = tokens * 2 * ffn;
      act.bytes[PassKind::I] += act.bytes[PassKind::F];
      auto& down = b.last("mlp.down");
      down.saved_until_I = 0;
    }
    return 3 * h * ffn;
  }
  b.linear("mlp.fc1", part, tokens, h, ffn, held, gemm_rows);
  b.elementwise("mlp.gelu", part, tokens, ffn, ffn);
  b.linear("mlp.fc2", part, tokens, ffn, h, held, gemm_rows);
  return 2 * h * ffn;
}

LayerCost transformer_layer(const ModelSpec& m, int layer, const Shape& sh) {
  LayerCost out;
  Builder b(sh, out);
  double T = sh.tokens(), h = m.hidden;
  double attention_params = attention(m, sh, b);
  b.elementwise("mlp.norm", Part::Mlp, T, h, h, h, true);
  if (sh.dropout) b.elementwise("mlp.dropout", Part::Mlp, T, h, h / 2, 0, true);  // 1-byte mask
  if (!m.is_moe_layer(layer)) {
    out.kind = LayerKind::Dense;
    double params = mlp(m.mlp, Part::Mlp, T, h, split(m.ffn_hidden, sh.tp, "ffn_hidden"), 1.0, b) * sh.tp;
    b.sequence_sharded_input(m.mlp == MlpKind::SwiGLU ? "mlp.gate_up" : "mlp.fc1", T, h);
    out.params_total = out.params_active = attention_params + params + h;
    return out;
  }
  auto& moe = *m.moe;
  out.kind = LayerKind::Moe;
  b.linear("moe.router", Part::Router, T, h, moe.routed_experts);
  b.sequence_sharded_input("moe.router", T, h);
  // Expert selection over T x E FP32 scores: the gate function, group-limited and final top-k, the
  // gathered and normalized weights and the dispatch layout, about four passes over the scores in F (eight
  // kernels, as DeepSeek's trace runs them) and two for the gate's gradient in I (docs/cost-model.md §12).
  double scores = T * moe.routed_experts * 4;
  b.memory("moe.route", Part::Router, {4 * scores, 2 * scores, 0}, {8, 4, 0});
  double fe = split(moe.expert_ffn_hidden, sh.tp, "expert_ffn_hidden");
  bool swiglu_cache = sh.fp8_linear_inputs && sh.selective_recompute;
  if (moe.shared_experts > 0)  // its input is the router's: the normalized hidden state
    mlp(MlpKind::SwiGLU, Part::SharedExperts, T, h, fe * moe.shared_experts, 1.0, b, -1, true, swiglu_cache);
  // Balanced routing: this GPU's experts see T·k token copies from its EP group; each of its
  // routed_experts/ep experts runs a GEMM over T·k·ep/routed_experts rows.
  double local = static_cast<double>(split(moe.routed_experts, sh.ep, "routed_experts")), routed = T * moe.experts_per_token;
  // Received tokens regrouped by expert before the expert GEMMs, and the weighted sum back per token after;
  // an FP8 dispatch quantizes the tokens first (DeepSeek-V3 §3.3).
  double e = sh.bytes_per_element, de = sh.dispatch_bytes_per_element;
  if (de < e) b.memory("moe.dispatch_quantize", Part::Router, {T * h * (e + de), 0, 0}, {1, 0, 0});
  b.memory("moe.permute", Part::Experts, {2 * routed * h * de, 2 * routed * h * e, 0}, {1, 1, 0});
  mlp(MlpKind::SwiGLU, Part::Experts, routed, h, fe, local, b, routed / local, false, swiglu_cache);
  b.memory("moe.unpermute", Part::Experts, {routed * h * e + T * h * e, routed * h * e + T * h * e, 0}, {1, 1, 0});
  double expert = 3.0 * h * moe.expert_ffn_hidden;
  out.params_total = attention_params + h * moe.routed_experts + expert * (moe.routed_experts + moe.shared_experts) + h;
  out.params_active =
      attention_params + h * moe.routed_experts + expert * (moe.experts_per_token + moe.shared_experts) + h;
  out.dispatch_bytes = routed * h * sh.dispatch_bytes_per_element;
  out.combine_bytes = routed * h * sh.combine_bytes_per_element;
  return out;
}

// Full recomputation: F keeps only the layer input; I re-runs the forward first (its FLOPs and bytes).
LayerCost with_recompute(LayerCost layer, const Shape& sh, double h) {
  if (!sh.recompute) return layer;
  OpCost again;
  again.name = "recompute.forward";
  again.part = Part::Attention;
  for (auto& op : layer.ops) {
    again.flops[I] += op.flops[F];
    again.bytes[I] += op.bytes[F];
    op.saved_until_I = 0;
  }
  again.saved_until_I = sh.tokens() * h * sh.bytes_per_element;
  layer.ops.push_back(again);
  return layer;
}

}  // namespace

double LayerCost::flops(PassKind pass) const {
  double sum = 0;
  for (auto& op : ops) sum += op.flops[pass];
  return sum;
}
double LayerCost::saved_until_I() const {
  double sum = 0;
  for (auto& op : ops) sum += op.saved_until_I;
  return sum;
}
double LayerCost::saved_until_W() const {
  double sum = 0;
  for (auto& op : ops) sum += op.saved_until_W;
  return sum;
}
double LayerCost::params() const {
  double sum = 0;
  for (auto& op : ops) sum += op.params;
  return sum;
}

std::vector<LayerCost> model_layers(const ModelSpec& m, const Shape& sh) {
  if (sh.micro_batch < 1 || sh.seq < 1 || sh.tp < 1 || sh.ep < 1)
    throw Error(fmt::format("shape: micro-batch {}, sequence {}, tp {}, ep {} must all be positive", sh.micro_batch,
                            sh.seq, sh.tp, sh.ep));
  std::vector<LayerCost> layers;
  double T = sh.tokens(), h = m.hidden, V = split(m.vocab + (m.vocab % sh.tp ? sh.tp - m.vocab % sh.tp : 0), sh.tp, "vocab");

  LayerCost embedding;
  embedding.kind = LayerKind::Embedding;
  Builder(sh, embedding).elementwise("embedding", Part::Embedding, T, h, 0, V * h);
  embedding.params_total = embedding.params_active = static_cast<double>(m.vocab) * h;
  layers.push_back(embedding);

  for (int l = 0; l < m.layers; ++l) layers.push_back(with_recompute(transformer_layer(m, l, sh), sh, h));

  auto head = [&](LayerCost& out, bool holds_weights) {
    Builder b(sh, out);
    b.elementwise("head.norm", Part::Head, T, h, h, h);
    b.linear("head.logits", Part::Head, T, h, V, holds_weights ? 1.0 : 0.0);
    b.elementwise("head.cross_entropy", Part::Head, T, V, V);
  };
  LayerCost out_head;
  out_head.kind = LayerKind::Head;
  head(out_head, !m.tied_embeddings);
  out_head.params_total = out_head.params_active = (m.tied_embeddings ? 0.0 : static_cast<double>(m.vocab) * h) + h;
  layers.push_back(out_head);

  for (int k = 0; k < m.mtp_modules; ++k) {  // DeepSeek-V3 MTP: norms, projection 2h -> h, one layer, shared head
    auto block = transformer_layer(m, m.layers - 1, sh);
    LayerCost mtp;
    mtp.kind = LayerKind::Mtp;
    Builder b(sh, mtp);
    b.elementwise("mtp.norms", Part::MtpProjection, T, 2 * h, 2 * h, 2 * h);
    b.linear("mtp.projection", Part::MtpProjection, T, 2 * h, h);
    mtp.ops.insert(mtp.ops.end(), block.ops.begin(), block.ops.end());
    LayerCost shared_head;
    head(shared_head, false);
    mtp.ops.insert(mtp.ops.end(), shared_head.ops.begin(), shared_head.ops.end());
    mtp.params_total = block.params_total + 2 * h * h + 3 * h;
    mtp.params_active = block.params_active + 2 * h * h + 3 * h;
    mtp.dispatch_bytes = block.dispatch_bytes;
    mtp.combine_bytes = block.combine_bytes;
    layers.push_back(mtp);
  }
  return layers;
}

ModelTotals model_totals(const ModelSpec& m, const Shape& sh) {
  ModelTotals t;
  for (auto& layer : model_layers(m, sh)) {
    if (layer.kind != LayerKind::Mtp) {
      t.params += layer.params_total;
      t.active_params += layer.params_active;
    }
    t.flops_per_token += (layer.flops(F) + layer.flops(I) + layer.flops(W)) / sh.tokens();
  }
  return t;
}

FlopsRules flops_rules(FlopsConvention convention) {
  switch (convention) {
    case FlopsConvention::Pipesim: return {true, true, false};
    case FlopsConvention::DeepSeek: return {true, false, false};
    case FlopsConvention::Megatron: return {false, true, true};
    case FlopsConvention::Palm: return {false, true, false};
  }
  return {};
}

std::string_view to_string(FlopsConvention convention) {
  switch (convention) {
    case FlopsConvention::Pipesim: return "pipesim";
    case FlopsConvention::DeepSeek: return "deepseek";
    case FlopsConvention::Megatron: return "megatron";
    case FlopsConvention::Palm: return "palm";
  }
  return "?";
}

FlopsConvention parse_flops_convention(std::string_view text, std::string_view field) {
  for (auto c : {FlopsConvention::Pipesim, FlopsConvention::DeepSeek, FlopsConvention::Megatron, FlopsConvention::Palm})
    if (text == to_string(c)) return c;
  throw Error(fmt::format("{}: unknown FLOPs convention '{}' (pipesim, deepseek, megatron, palm)", field, text));
}

double flops_per_token(const ModelSpec& m, Shape sh, FlopsConvention convention) {
  auto rules = flops_rules(convention);
  sh.causal = rules.causal;
  if (!rules.recompute) sh.recompute = sh.selective_recompute = false;
  double sum = 0;
  for (auto& layer : model_layers(m, sh))
    if (rules.mtp || layer.kind != LayerKind::Mtp) sum += layer.flops(F) + layer.flops(I) + layer.flops(W);
  return sum / sh.tokens();
}

}  // namespace pipesim
