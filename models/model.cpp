// Loading and validating model specs (see model.hpp).
#include "models/model.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "common/presets.hpp"

namespace pipesim {
namespace {

using Json = nlohmann::json;

// Counts (layers, heads, sizes) are whole numbers up to this; larger is a typo, not a model.
constexpr int kMaxCount = 100'000'000;

// A count; `fallback` when absent, required when there is none.
int count(const JsonReader& r, std::string_view key, std::optional<int> fallback = std::nullopt) {
  if (fallback && !r.has(key)) return *fallback;
  JsonReader v = r.child(key);
  int n = v.get<int>();
  if (n < 0 || n > kMaxCount) v.fail(fmt::format("expected a non-negative integer up to {}, got {}", kMaxCount, n));
  return n;
}

// A published figure: a non-negative number, 0 when absent.
double figure(const JsonReader& r, std::string_view key) {
  if (!r.has(key)) return 0;
  JsonReader v = r.child(key);
  double x = v.get<double>();
  if (x < 0) v.fail(fmt::format("expected a non-negative number, got {}", x));
  return x;
}

// One of `allowed`; `fallback` when absent.
std::string choice(const JsonReader& r, std::string_view key, std::string fallback,
                   std::initializer_list<std::string_view> allowed) {
  if (!r.has(key)) return fallback;
  JsonReader v = r.child(key);
  auto s = v.get<std::string>();
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
    v.fail(fmt::format("'{}' is not one of {}", s, fmt::join(allowed, ", ")));
  return s;
}

}  // namespace

ModelSpec parse_model(std::string_view json_text, std::string_view source) {
  Json json = parse_json(json_text, source);
  JsonReader r(json, std::string(source));
  r.expect_object();
  ModelSpec m;
  m.name = r.optional<std::string>("name", std::string(source));
  m.source = r.optional<std::string>("source", "");
  m.layers = count(r, "layers");
  m.hidden = count(r, "hidden");
  m.heads = count(r, "heads");
  m.kv_heads = count(r, "kv_heads", m.heads);
  m.head_dim = count(r, "head_dim", m.heads > 0 ? m.hidden / m.heads : 0);
  m.ffn_hidden = count(r, "ffn_hidden", 4 * m.hidden);
  m.mlp = choice(r, "mlp", "gelu", {"gelu", "swiglu"}) == "swiglu" ? MlpKind::SwiGLU : MlpKind::Gelu;
  auto attention = choice(r, "attention", m.kv_heads == m.heads ? "mha" : "gqa", {"mha", "gqa", "mla"});
  m.attention = attention == "mla" ? AttentionKind::Mla : attention == "gqa" ? AttentionKind::Gqa : AttentionKind::Mha;
  m.vocab = count(r, "vocab");
  m.tied_embeddings = r.optional<bool>("tied_embeddings", false);
  m.seq = count(r, "seq", 2048);
  m.mtp_modules = count(r, "mtp_modules", 0);
  if (r.has("mla")) {
    JsonReader q = r.child("mla");
    q.expect_object();
    m.mla = MlaSpec{count(q, "q_lora_rank", 0), count(q, "kv_lora_rank"), count(q, "qk_nope_head_dim"),
                    count(q, "qk_rope_head_dim"), count(q, "v_head_dim")};
    q.only_keys({"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "comment"});
  }
  if (r.has("moe")) {
    JsonReader q = r.child("moe");
    q.expect_object();
    m.moe = MoeSpec{count(q, "first_dense_layers", 0), count(q, "routed_experts"),     count(q, "shared_experts", 0),
                    count(q, "experts_per_token"),     count(q, "expert_ffn_hidden"), count(q, "max_nodes_per_token", 0)};
    q.only_keys({"first_dense_layers", "routed_experts", "shared_experts", "experts_per_token", "expert_ffn_hidden",
                 "max_nodes_per_token", "comment"});
  }
  if (r.has("published")) {
    JsonReader q = r.child("published");
    q.expect_object();
    m.published = {figure(q, "total_params"), figure(q, "active_params"), figure(q, "training_gflops_per_token")};
    q.only_keys({"total_params", "active_params", "training_gflops_per_token", "comment"});
  }
  r.only_keys({"name", "source", "layers", "hidden", "heads", "kv_heads", "head_dim", "ffn_hidden", "mlp", "attention",
               "vocab", "tied_embeddings", "seq", "mtp_modules", "mla", "moe", "published", "comment"});
  if (m.layers < 1 || m.hidden < 1 || m.heads < 1 || m.vocab < 1 || m.seq < 1)
    r.fail("layers, hidden, heads, vocab and seq must be positive");
  if (m.kv_heads < 1 || m.heads % m.kv_heads != 0)
    r.fail(fmt::format("kv_heads {} must divide heads {}", m.kv_heads, m.heads));
  if (m.attention == AttentionKind::Mla && !m.mla) r.fail("attention is \"mla\" but the \"mla\" object is missing");
  if (m.moe) {
    if (m.moe->experts_per_token < 1 || m.moe->experts_per_token > m.moe->routed_experts)
      r.fail(fmt::format("moe.experts_per_token {} must lie in 1..routed_experts ({})", m.moe->experts_per_token,
                         m.moe->routed_experts));
    if (m.moe->first_dense_layers > m.layers) r.fail("moe.first_dense_layers exceeds layers");
  }
  return m;
}

std::vector<std::string> model_presets() { return preset_names(model_preset_files()); }

ModelSpec load_model(std::string_view name_or_path) {
  auto preset = preset_or_file(model_preset_files(), name_or_path, "model");
  return parse_model(preset.text, preset.source);
}

}  // namespace pipesim
