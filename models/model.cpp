// Loading and validating model specs (see model.hpp).
#include "models/model.hpp"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/presets.hpp"

namespace pipesim {
namespace {

using Json = nlohmann::json;

class Reader {
 public:
  Reader(const Json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (!object.is_object()) throw Error(fmt::format("{}: expected an object", path_));
  }
  int count(const char* key, bool required, int fallback = 0) {
    seen_.push_back(key);
    if (!object_.contains(key)) {
      if (required) throw Error(fmt::format("{}.{}: missing (a positive integer)", path_, key));
      return fallback;
    }
    auto& v = object_[key];
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() > 100'000'000)
      throw Error(fmt::format("{}.{}: expected a non-negative integer, got {}", path_, key, v.dump()));
    return v.get<int>();
  }
  double number(const char* key) {
    seen_.push_back(key);
    if (!object_.contains(key)) return 0;
    auto& v = object_[key];
    if (!v.is_number() || v.get<double>() < 0)
      throw Error(fmt::format("{}.{}: expected a non-negative number, got {}", path_, key, v.dump()));
    return v.get<double>();
  }
  std::string text(const char* key, std::string fallback, std::initializer_list<const char*> allowed = {}) {
    seen_.push_back(key);
    if (!object_.contains(key)) return fallback;
    auto& v = object_[key];
    if (!v.is_string()) throw Error(fmt::format("{}.{}: expected a string, got {}", path_, key, v.dump()));
    auto s = v.get<std::string>();
    if (allowed.size() == 0) return s;
    for (auto a : allowed)
      if (s == a) return s;
    throw Error(fmt::format("{}.{}: '{}' is not one of {}", path_, key, s, fmt::join(allowed, ", ")));
  }
  bool flag(const char* key) {
    seen_.push_back(key);
    if (!object_.contains(key)) return false;
    if (!object_[key].is_boolean())
      throw Error(fmt::format("{}.{}: expected true or false, got {}", path_, key, object_[key].dump()));
    return object_[key].get<bool>();
  }
  const Json* child(const char* key) {
    seen_.push_back(key);
    return object_.contains(key) ? &object_[key] : nullptr;
  }
  void no_unknown_keys() const {
    for (auto& [key, value] : object_.items())
      if (std::find(seen_.begin(), seen_.end(), key) == seen_.end() && key != "comment")
        throw Error(fmt::format("{}.{}: unknown field", path_, key));
  }
  const std::string& path() const { return path_; }

 private:
  const Json& object_;
  std::string path_;
  std::vector<std::string> seen_;
};

}  // namespace

ModelSpec parse_model(std::string_view json_text, std::string_view source) {
  Json json;
  try {
    json = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  Reader r(json, std::string(source));
  ModelSpec m;
  m.name = r.text("name", std::string(source));
  m.source = r.text("source", "");
  m.layers = r.count("layers", true);
  m.hidden = r.count("hidden", true);
  m.heads = r.count("heads", true);
  m.kv_heads = r.count("kv_heads", false, m.heads);
  m.head_dim = r.count("head_dim", false, m.heads > 0 ? m.hidden / m.heads : 0);
  m.ffn_hidden = r.count("ffn_hidden", false, 4 * m.hidden);
  m.mlp = r.text("mlp", "gelu", {"gelu", "swiglu"});
  m.attention = r.text("attention", m.kv_heads == m.heads ? "mha" : "gqa", {"mha", "gqa", "mla"});
  m.vocab = r.count("vocab", true);
  m.tied_embeddings = r.flag("tied_embeddings");
  m.seq = r.count("seq", false, 2048);
  m.mtp_modules = r.count("mtp_modules", false, 0);
  if (auto* mla = r.child("mla")) {
    Reader q(*mla, r.path() + ".mla");
    m.mla = MlaSpec{q.count("q_lora_rank", false), q.count("kv_lora_rank", true), q.count("qk_nope_head_dim", true),
                    q.count("qk_rope_head_dim", true), q.count("v_head_dim", true)};
    q.no_unknown_keys();
  }
  if (auto* moe = r.child("moe")) {
    Reader q(*moe, r.path() + ".moe");
    m.moe = MoeSpec{q.count("first_dense_layers", false), q.count("routed_experts", true),
                    q.count("shared_experts", false),     q.count("experts_per_token", true),
                    q.count("expert_ffn_hidden", true),   q.count("max_nodes_per_token", false)};
    q.no_unknown_keys();
  }
  if (auto* pub = r.child("published")) {
    Reader q(*pub, r.path() + ".published");
    m.published = {q.number("total_params"), q.number("active_params"), q.number("training_gflops_per_token")};
    q.no_unknown_keys();
  }
  r.no_unknown_keys();
  auto fail = [&](const std::string& what) { throw Error(fmt::format("{}: {}", source, what)); };
  if (m.layers < 1 || m.hidden < 1 || m.heads < 1 || m.vocab < 1 || m.seq < 1)
    fail("layers, hidden, heads, vocab and seq must be positive");
  if (m.kv_heads < 1 || m.heads % m.kv_heads != 0)
    fail(fmt::format("kv_heads {} must divide heads {}", m.kv_heads, m.heads));
  if (m.attention == "mla" && !m.mla) fail("attention is \"mla\" but the \"mla\" object is missing");
  if (m.moe) {
    if (m.moe->experts_per_token < 1 || m.moe->experts_per_token > m.moe->routed_experts)
      fail(fmt::format("moe.experts_per_token {} must lie in 1..routed_experts ({})", m.moe->experts_per_token,
                       m.moe->routed_experts));
    if (m.moe->first_dense_layers > m.layers) fail("moe.first_dense_layers exceeds layers");
  }
  return m;
}

std::vector<std::string> model_presets() {
  std::vector<std::string> names;
  for (auto& file : model_preset_files()) names.emplace_back(file.name);
  return names;
}

ModelSpec load_model(std::string_view name_or_path) {
  for (auto& file : model_preset_files())
    if (file.name == name_or_path) return parse_model(file.text, std::string(name_or_path) + ".json");
  if (!std::filesystem::exists(std::filesystem::path(name_or_path)))
    throw Error(fmt::format("unknown model '{}': not a preset ({}) nor a file", name_or_path,
                            fmt::join(model_presets(), ", ")));
  return parse_model(read_file(std::string(name_or_path)), name_or_path);
}

}  // namespace pipesim
