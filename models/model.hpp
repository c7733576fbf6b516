// Model architectures as JSON presets (models/presets/*.json) or user files. One struct, validated once
// where loaded; errors name the JSON path and the value. Schema (all sizes are counts, not bytes):
//   {"name": "deepseek-v3", "source": "where the numbers come from",
//    "layers": 61, "hidden": 7168, "heads": 128, "kv_heads": 128, "head_dim": 128,
//    "ffn_hidden": 18432, "mlp": "swiglu" | "gelu", "vocab": 129280, "tied_embeddings": false, "seq": 4096,
//    "attention": "mha" | "gqa" | "mla",
//    "mla": {"q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
//            "v_head_dim": 128},
//    "moe": {"first_dense_layers": 3, "routed_experts": 256, "shared_experts": 1, "experts_per_token": 8,
//            "expert_ffn_hidden": 2048, "max_nodes_per_token": 4},
//    "mtp_modules": 1,
//    "published": {"total_params": 671e9, "active_params": 37e9, "training_gflops_per_token": 250}}
// "published" holds the numbers the source reports, which tests hold the accounting against.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipesim {

struct MlaSpec {
  int q_lora_rank = 0;  // 0: queries projected directly
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
};

struct MoeSpec {
  int first_dense_layers = 0;   // leading layers with a dense MLP
  int routed_experts = 0;
  int shared_experts = 0;
  int experts_per_token = 0;    // top-k
  int expert_ffn_hidden = 0;
  int max_nodes_per_token = 0;  // node-limited routing; 0: unlimited
};

enum class MlpKind { Gelu, SwiGLU };         // 2 matrices, or 3 (gate, up, down)
enum class AttentionKind { Mha, Gqa, Mla };  // MLA: DeepSeek's low-rank latent attention

struct PublishedFigures {
  double total_params = 0;               // 0: not published
  double active_params = 0;
  double training_gflops_per_token = 0;
};

struct ModelSpec {
  std::string name, source;
  int layers = 0;
  int hidden = 0;
  int heads = 0;
  int kv_heads = 0;     // = heads for MHA
  int head_dim = 0;     // default hidden / heads
  int ffn_hidden = 0;   // dense MLP
  MlpKind mlp = MlpKind::Gelu;              // JSON "gelu" | "swiglu"
  AttentionKind attention = AttentionKind::Mha;  // JSON "mha" | "gqa" | "mla"
  int vocab = 0;
  bool tied_embeddings = false;
  int seq = 2048;
  std::optional<MlaSpec> mla;
  std::optional<MoeSpec> moe;
  int mtp_modules = 0;
  PublishedFigures published;

  bool is_moe_layer(int layer) const { return moe && layer >= moe->first_dense_layers; }
};

// A preset name or a path to a JSON file.
ModelSpec load_model(std::string_view name_or_path);
ModelSpec parse_model(std::string_view json_text, std::string_view source);
std::vector<std::string> model_presets();

}  // namespace pipesim
