// The per-layer accounting against published formulas and figures: ZeroBubble's per-layer FLOPs and
// activation memory, Megatron's 96·B·s·l·h²(1 + s/6h + V/16lh) per iteration with recomputation, and
// the parameter counts the presets' sources publish (DeepSeek-V3 671B total / 37B active, ~250 GFLOP per
// token; Llama 3; GPT-3; the Megatron and ZeroBubble paper models).
#include <gtest/gtest.h>

#include <stdexcept>

#include "common/error.hpp"
#include <fmt/format.h>

#include "models/accounting.hpp"

namespace pipesim {
namespace {

ModelSpec gpt(int layers, int h, int heads, int vocab) {
  return parse_model(fmt::format(R"({{"name": "gpt", "layers": {}, "hidden": {}, "heads": {}, "vocab": {},
                                      "tied_embeddings": true}})",
                                 layers, h, heads, vocab),
                     "test");
}

TEST(Accounting, GptLayerMatchesZeroBubbleFormulas) {
  for (auto [s, b, h, a] : {std::tuple{1024, 1, 2304, 24}, {1024, 4, 4096, 32}, {2048, 2, 6144, 48}, {512, 8, 1024, 16}}) {
    Shape sh;
    sh.micro_batch = b;
    sh.seq = s;
    sh.causal = false;
    sh.flash_attention = false;
    sh.dropout = true;
    auto layers = model_layers(gpt(2, h, a, 50257), sh);
    auto& layer = layers[1];
    double sbh = 1.0 * s * b * h;
    EXPECT_DOUBLE_EQ(layer.flops(PassKind::F), sbh * (24.0 * h + 4.0 * s));
    EXPECT_DOUBLE_EQ(layer.flops(PassKind::I), sbh * (24.0 * h + 8.0 * s));
    EXPECT_DOUBLE_EQ(layer.flops(PassKind::W), sbh * 24.0 * h);
    // Activation memory (bytes, 16-bit): sb(34h + 5as) needed by I, 32sbh by W.
    EXPECT_DOUBLE_EQ(layer.saved_until_I(), 1.0 * s * b * (34.0 * h + 5.0 * a * s));
    EXPECT_DOUBLE_EQ(layer.saved_until_W(), 32.0 * sbh);
  }
}

// Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models" (arXiv 2205.05198)
// Table 2, 16-bit, no flash, with dropout: tensor parallel sbh(10 + 24/t + 5as/(ht)); with sequence
// parallelism sbh(34/t + 5as/(ht)).
TEST(Accounting, TensorAndSequenceParallelActivationsMatchKorthikanti) {
  const int s = 2048, b = 1, h = 4096, a = 32;
  auto m = gpt(2, h, a, 50256);
  for (int t : {1, 2, 4, 8})
    for (bool sp : {false, true}) {
      Shape sh;
      sh.micro_batch = b;
      sh.seq = s;
      sh.causal = false;
      sh.flash_attention = false;
      sh.dropout = true;
      sh.tp = t;
      sh.sequence_parallel = sp;
      double sbh = 1.0 * s * b * h, attention = 5.0 * a * s / (1.0 * h * t);
      double want = sp ? sbh * (34.0 / t + attention) : sbh * (10 + 24.0 / t + attention);
      EXPECT_DOUBLE_EQ(model_layers(m, sh)[1].saved_until_I(), want) << "t " << t << " sp " << sp;
    }
}

TEST(Accounting, CausalConventionHalvesAttentionScores) {
  Shape full, causal;
  full.causal = false;
  full.seq = causal.seq = 4096;
  auto m = gpt(1, 4096, 32, 50257);
  double diff = model_layers(m, full)[1].flops(PassKind::F) - model_layers(m, causal)[1].flops(PassKind::F);
  // 4bs²h non-causal; causal counts (s+1)/2 keys per query.
  EXPECT_DOUBLE_EQ(diff, 4.0 * 4096 * 4096 * 4096 - 4.0 * 4096 * (4097 / 2.0) * 4096);
}

TEST(Accounting, MegatronIterationFlopsWithRecomputation) {
  for (auto name : {"megatron-1.7b", "megatron-18b", "megatron-145b", "megatron-1t"}) {
    auto m = load_model(name);
    Shape sh;
    sh.seq = m.seq;
    sh.micro_batch = 3;
    sh.causal = false;
    sh.recompute = true;
    double total = 0;
    for (auto& layer : model_layers(m, sh))
      total += layer.flops(PassKind::F) + layer.flops(PassKind::I) + layer.flops(PassKind::W);
    double B = sh.micro_batch, s = m.seq, l = m.layers, h = m.hidden, V = m.vocab;
    EXPECT_NEAR(total / (96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h))), 1.0, 1e-12) << name;
  }
}

// The conventions, each against its paper's closed form on a Megatron GPT (full attention, FFN 4h):
// megatron = SC21's 96·s·l·h²(1 + s/6h + V/16lh) per sequence with full recomputation and the 72-form
// without; palm = the 72-form (model FLOPs); pipesim = palm less the causal half of the scores' 12·s²·h per
// layer per sequence (4bs²h in F, twice in I; causal keeps (s+1)/2 of s keys); deepseek = pipesim less MTP.
TEST(Accounting, FlopsConventionsMatchTheirClosedForms) {
  auto m = load_model("megatron-18b");
  Shape sh;
  sh.seq = m.seq;
  double s = m.seq, l = m.layers, h = m.hidden, V = m.vocab;
  double seventy_two = 72 * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h)) / s;
  EXPECT_NEAR(flops_per_token(m, sh, FlopsConvention::Palm) / seventy_two, 1.0, 1e-12);
  EXPECT_NEAR(flops_per_token(m, sh, FlopsConvention::Megatron) / seventy_two, 1.0, 1e-12);  // nothing recomputed
  sh.recompute = true;
  EXPECT_NEAR(flops_per_token(m, sh, FlopsConvention::Megatron) /
                  (96 * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h)) / s), 1.0, 1e-12);
  EXPECT_NEAR(flops_per_token(m, sh, FlopsConvention::Palm) / seventy_two, 1.0, 1e-12);  // recomputation not counted
  double causal_saving = l * 12 * s * h * (s - (s + 1) / 2);  // per sequence
  EXPECT_NEAR(flops_per_token(m, sh, FlopsConvention::Pipesim) / (seventy_two - causal_saving / s), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(flops_per_token(m, sh, FlopsConvention::DeepSeek), flops_per_token(m, sh, FlopsConvention::Pipesim));

  // DeepSeek-V3: its one MTP module is one more MoE layer and the shared head's logits, 2·3·h·V per token
  // more, plus its 2h -> h projection 2·3·2h·h; the deepseek count leaves all of it out.
  auto ds = load_model("deepseek-v3");
  Shape dsh;
  dsh.seq = 4096;
  auto layers = model_layers(ds, dsh);
  double mtp = 0;
  for (auto& layer : layers)
    if (layer.kind == LayerKind::Mtp) mtp += layer.flops(PassKind::F) + layer.flops(PassKind::I) + layer.flops(PassKind::W);
  double moe_layer = layers[static_cast<std::size_t>(ds.layers)].flops(PassKind::F) * 3 / 4096;  // F·3 ≈ F+I+W
  EXPECT_GT(mtp / 4096, 2 * 3 * 7168.0 * 129280);
  EXPECT_NEAR(flops_per_token(ds, dsh, FlopsConvention::Pipesim) - flops_per_token(ds, dsh, FlopsConvention::DeepSeek),
              mtp / 4096, 1e-3);
  EXPECT_NEAR(mtp / 4096, moe_layer + 2 * 3 * 7168.0 * 129280 + 2 * 3 * 2 * 7168.0 * 7168, 0.02 * mtp / 4096);
  EXPECT_EQ(parse_flops_convention("megatron", "--flops-convention"), FlopsConvention::Megatron);
  try {
    parse_flops_convention("hfu", "--flops-convention");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--flops-convention: unknown FLOPs convention 'hfu'"), std::string::npos);
  }
}

TEST(Accounting, ParameterCountsMatchPublishedFigures) {
  int checked = 0;
  for (auto& name : model_presets()) {
    auto m = load_model(name);
    if (m.published.total_params <= 0) continue;
    auto totals = model_totals(m, Shape{});
    // Megatron's table rounds and counts position embeddings and biases we leave out: 4%; others 1.5%.
    double tolerance = name.rfind("megatron", 0) == 0 || name.rfind("zb-", 0) == 0 ? 0.04 : 0.015;
    EXPECT_NEAR(totals.params / m.published.total_params, 1.0, tolerance) << name << ": " << totals.params;
    if (m.published.active_params > 0) {
      EXPECT_NEAR(totals.active_params / m.published.active_params, 1.0, 0.03) << name << ": " << totals.active_params;
    }
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

TEST(Accounting, DeepSeekV3TrainingFlopsPerToken) {
  auto m = load_model("deepseek-v3");
  Shape sh;
  sh.seq = 4096;
  auto totals = model_totals(m, sh);
  EXPECT_NEAR(totals.flops_per_token / (m.published.training_gflops_per_token * 1e9), 1.0, 0.10) << totals.flops_per_token;
  // The routed experts spread over EP ranks: each GPU holds 256/ep experts, its GEMMs see T·k·ep/256 rows.
  sh.ep = 64;
  auto layers = model_layers(m, sh);
  auto& moe = layers[5];
  ASSERT_EQ(moe.kind, LayerKind::Moe);
  for (auto& op : moe.ops)
    if (op.part == Part::Experts && op.k > 0) {
      EXPECT_DOUBLE_EQ(op.m, 4096.0 * 8 * 64 / 256);
    }
  EXPECT_DOUBLE_EQ(moe.dispatch_bytes, 4096.0 * 8 * 7168 * 1);  // FP8
  EXPECT_DOUBLE_EQ(moe.combine_bytes, 4096.0 * 8 * 7168 * 2);   // BF16
}

// DeepSeek-V3's FP8 recipe (report §3.3): every linear quantizes its input (3 bytes per element read and
// written in F); the SwiGLU input is cached in FP8 with its output recomputed; one normalized input feeding
// two projections is cached once (docs/cost-model.md §3, §12).
TEST(Accounting, DeepSeekFp8CachingAndQuantization) {
  auto m = load_model("deepseek-v3");
  Shape sh;
  sh.seq = 4096;
  sh.ep = 64;
  sh.fp8_linear_inputs = true;
  sh.selective_recompute = true;
  double T = 4096, h = 7168, routed = T * 8, fe = 2048;
  auto find = [](const LayerCost& layer, const std::string& name, Part part) -> const OpCost& {
    for (auto& op : layer.ops)
      if (op.name == name && op.part == part) return op;
    throw std::runtime_error("no " + name);
  };
  auto moe = model_layers(m, sh)[5];
  // q_down keeps the normalized input in FP8 (1 byte); kv_down reads the same tensor and keeps nothing more.
  EXPECT_DOUBLE_EQ(find(moe, "attention.q_down", Part::Attention).saved_until_I, T * h);
  EXPECT_DOUBLE_EQ(find(moe, "attention.kv_down", Part::Attention).saved_until_I, 0);
  // The shared expert's gate/up reads the router's input.
  EXPECT_DOUBLE_EQ(find(moe, "mlp.gate_up", Part::SharedExperts).saved_until_I, 0);
  // Routed experts: SwiGLU input T·k·2f in FP8, the down projection's input recomputed.
  EXPECT_DOUBLE_EQ(find(moe, "mlp.swiglu", Part::Experts).saved_until_I, routed * 2 * fe);
  EXPECT_DOUBLE_EQ(find(moe, "mlp.down", Part::Experts).saved_until_I, 0);
  auto& swiglu = find(moe, "mlp.swiglu", Part::Experts);
  EXPECT_DOUBLE_EQ(swiglu.bytes[PassKind::I], 2 * routed * 2 * fe * 2 + 3 * routed * 2 * fe * 2);  // F again, then I
  // Quantization: F reads BF16 and writes FP8 of the input; the gate/up of the routed experts sees T·k rows.
  auto& cast = find(moe, "mlp.gate_up.fp8_cast", Part::Experts);
  EXPECT_DOUBLE_EQ(cast.bytes[PassKind::F], 3 * routed * h);
  EXPECT_DOUBLE_EQ(cast.bytes[PassKind::W], 2 * routed * h + 3 * routed * 2 * fe);  // grouped: W's operands in W
  // Expert selection: four passes over T x 256 FP32 scores in F, two in I, eight and four kernels.
  auto& route = find(moe, "moe.route", Part::Router);
  EXPECT_DOUBLE_EQ(route.bytes[PassKind::F], 4 * T * 256 * 4);
  EXPECT_DOUBLE_EQ(route.bytes[PassKind::I], 2 * T * 256 * 4);
  EXPECT_DOUBLE_EQ(route.kernels[PassKind::F], 8);
  auto& q_cast = find(moe, "attention.q_down.fp8_cast", Part::Attention);
  EXPECT_DOUBLE_EQ(q_cast.bytes[PassKind::W], 0);  // plain linears prepare W's operands in I
  // Without the recipe (BF16), the SwiGLU keeps its BF16 input and the down projection its input.
  Shape bf16 = sh;
  bf16.fp8_linear_inputs = false;
  auto plain = model_layers(m, bf16)[5];
  EXPECT_DOUBLE_EQ(find(plain, "mlp.swiglu", Part::Experts).saved_until_I, routed * 2 * fe * 2);
  EXPECT_DOUBLE_EQ(find(plain, "mlp.down", Part::Experts).saved_until_I, routed * fe * 2);
}

// Without flash attention the scores round-trip through HBM: 4 passes over T·a·keys in F, 6 in I, at 2
// bytes; the softmax output (2 bytes per score) is kept for I (docs/cost-model.md §3).
TEST(Accounting, UnfusedAttentionMovesAndKeepsTheScores) {
  ModelSpec m = load_model("gpt3-175b");
  Shape flash;
  flash.seq = 2048;
  flash.tp = 8;
  Shape unfused = flash;
  unfused.flash_attention = false;
  auto core = [](const LayerCost& layer) -> const OpCost& {
    for (auto& op : layer.ops)
      if (op.name.starts_with("attention.core")) return op;
    throw std::runtime_error("no attention core");
  };
  auto flash_layers = model_layers(m, flash), unfused_layers = model_layers(m, unfused);
  auto& a = core(flash_layers[1]);
  auto& b = core(unfused_layers[1]);
  double T = 2048, heads = 96 / 8, keys = (2048 + 1) / 2.0;
  EXPECT_EQ(b.name, "attention.core_unfused");
  EXPECT_DOUBLE_EQ(b.bytes[PassKind::F] - a.bytes[PassKind::F], 4 * T * heads * keys * 2);
  EXPECT_DOUBLE_EQ(b.bytes[PassKind::I] - a.bytes[PassKind::I], 6 * T * heads * keys * 2);
  EXPECT_DOUBLE_EQ(b.saved_until_I - a.saved_until_I, T * heads * 2048 * 2);
  EXPECT_DOUBLE_EQ(b.flops[PassKind::F], a.flops[PassKind::F]);
}

TEST(Accounting, RefusesBadSpecs) {
  auto refused = [](const char* json) {
    try {
      parse_model(json, "bad.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refused(R"({"layers": 2})").find("bad.json: hidden: missing"), std::string::npos);
  EXPECT_NE(refused(R"({"layers": 2, "hidden": -4, "heads": 2, "vocab": 10})").find("hidden: expected a non-negative integer"),
            std::string::npos);
  EXPECT_NE(refused(R"({"layers": 2, "hidden": 8, "heads": 2, "vocab": 10, "mlp": "relu"})").find("'relu' is not one of"),
            std::string::npos);
  EXPECT_NE(refused(R"({"layers": 2, "hidden": 8, "heads": 2, "vocab": 10, "colour": 1})").find("colour: unknown field"),
            std::string::npos);
  EXPECT_NE(refused(R"({"layers": 2, "hidden": 8, "heads": 4, "kv_heads": 3, "vocab": 10})").find("must divide"),
            std::string::npos);
  EXPECT_NE(refused("{\"layers\": 2,").find("not valid JSON"), std::string::npos);
  EXPECT_THROW(load_model("no-such-model"), Error);
}

}  // namespace
}  // namespace pipesim
