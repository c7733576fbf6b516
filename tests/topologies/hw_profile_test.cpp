// Hardware profiles: interpolation, the datasheet default (the old efficiency model exactly), table lookup
// by precision, pass and EP size, and the parser's refusals (docs/hardware-profiles.md §1-§2).
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "topologies/cluster.hpp"
#include "topologies/hw_profile.hpp"

namespace pipesim {
namespace {

TEST(HwProfile, TablesInterpolateLinearlyAndStayFlatBeyondTheEnds) {
  RateTable t{{{100, 10}, {300, 30}, {400, 20}}, "s"};
  EXPECT_DOUBLE_EQ(t.at(50), 10);
  EXPECT_DOUBLE_EQ(t.at(200), 20);
  EXPECT_DOUBLE_EQ(t.at(350), 25);
  EXPECT_DOUBLE_EQ(t.at(1e9), 20);
}

TEST(HwProfile, DefaultReproducesTheGenericEfficiencyModel) {
  GpuSpec gpu;
  gpu.name = "g";
  gpu.bf16_tflops = 1000;
  gpu.fp8_tflops = 2000;
  gpu.hbm_GBps = 3000;
  gpu.gemm_efficiency_max = 0.75;
  gpu.gemm_efficiency_knee = 1024;
  gpu.memory_efficiency = 0.8;
  auto p = default_profile(gpu);
  // peak x 0.75 x min(1, x / 1024)
  EXPECT_NEAR(gemm_tflops(p, "bf16", 512), 1000 * 0.75 * 0.5, 1e-9);
  EXPECT_NEAR(gemm_tflops(p, "fp8", 4096), 2000 * 0.75, 1e-9);
  EXPECT_NEAR(gemm_tflops(p, "fp8", 256, GemmKind::Wgrad), 2000 * 0.75 * 0.25, 1e-9);  // no wgrad table: fp8's
  EXPECT_DOUBLE_EQ(p.memory_GBps.value, 2400);
  EXPECT_EQ(comm_table(p, "dispatch", 64), nullptr);
}

TEST(HwProfile, PassAndEpSpecificTablesWinOverTheGeneralOnes) {
  HwProfile p;
  p.gemm_tflops["bf16"] = {{{1, 100}}, "s"};
  p.gemm_tflops["fp8"] = {{{1, 200}}, "s"};
  p.gemm_tflops["fp8.wgrad"] = {{{1, 150}}, "s"};
  p.comm_GBps["dispatch"] = {{{1, 40}}, "s"};
  p.comm_GBps["dispatch.ep16"] = {{{1, 160}}, "s"};
  EXPECT_DOUBLE_EQ(gemm_tflops(p, "fp8", 10, GemmKind::Wgrad), 150);
  EXPECT_DOUBLE_EQ(gemm_tflops(p, "fp8", 10, GemmKind::Dgrad), 200);
  EXPECT_DOUBLE_EQ(gemm_tflops(p, "fp16", 10), 100);
  EXPECT_DOUBLE_EQ(comm_table(p, "dispatch", 16)->at(1), 160);
  EXPECT_DOUBLE_EQ(comm_table(p, "dispatch", 64)->at(1), 40);
  EXPECT_EQ(comm_table(p, "combine", 16), nullptr);
}

std::string refusal(const std::string& json) {
  try {
    parse_hw_profile(json, "p.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(HwProfile, ParserNamesTheFieldItRefuses) {
  std::string figures = R"("attention_forward_tflops":{"value":1,"source":"s"},"attention_backward_tflops":{"value":1,"source":"s"},
"memory_GBps":{"value":1,"source":"s"},"launch_gap_us":{"value":0,"source":"s"},"comm_compute_slowdown":{"value":0,"source":"s"},
"pair_stall_fraction":{"value":0,"source":"s"})";
  auto with = [&](const std::string& gemm, const std::string& comm = "") {
    return R"({"name":"x","gpu":"g","source":"s","gemm_tflops":)" + gemm + "," + figures +
           (comm.empty() ? "" : R"(,"comm_GBps":)" + comm) + "}";
  };
  std::string bf16 = R"({"bf16":{"points":[{"x":1,"y":100}],"source":"s"}})";
  EXPECT_EQ(refusal(with(bf16)), "accepted");
  EXPECT_NE(refusal(with(R"({"fp8":{"points":[{"x":1,"y":100}],"source":"s"}})")).find("needs a bf16 table"), std::string::npos);
  EXPECT_NE(refusal(with(R"({"bf16":{"points":[{"x":2,"y":1},{"x":1,"y":2}],"source":"s"}})")).find("gemm_tflops.bf16.points[1].x"),
            std::string::npos);
  EXPECT_NE(refusal(with(R"({"bf16":{"points":[{"x":1,"y":1e9}],"source":"s"}})")).find("points[0].y"), std::string::npos);
  EXPECT_NE(refusal(with(R"({"bf16":{"points":[{"x":1,"y":1}],"source":""}})")).find("names its source"), std::string::npos);
  EXPECT_EQ(refusal(with(bf16, R"({"dispatch.ep16":{"points":[{"x":1,"y":1}],"source":"s"}})")), "accepted");
  EXPECT_NE(refusal(with(bf16, R"({"dispatch.epX":{"points":[{"x":1,"y":1}],"source":"s"}})")).find("comm_GBps.dispatch.epX"),
            std::string::npos);
  EXPECT_EQ(refusal(with(bf16, R"({"p2p":{"points":[{"x":1,"y":1}],"source":"s"}})")), "accepted");
  auto overhead = with(bf16);
  overhead.insert(overhead.size() - 1, R"(,"p2p_overhead_us":{"value":-1,"source":"s"})");
  EXPECT_NE(refusal(overhead).find("p2p_overhead_us"), std::string::npos);
  EXPECT_NE(refusal(with(bf16, R"({"teleport":{"points":[{"x":1,"y":1}],"source":"s"}})")).find("unknown table"),
            std::string::npos);
}

TEST(HwProfile, EveryPresetLoadsAndEveryClusterNamesOne) {
  for (auto& name : hw_profile_presets()) {
    auto p = load_hw_profile(name);
    EXPECT_EQ(p.name, name);
    EXPECT_FALSE(p.source.empty()) << name;
    for (auto& [table, t] : p.gemm_tflops) EXPECT_FALSE(t.source.empty()) << name << " " << table;
  }
  EXPECT_EQ(load_cluster("deepseek-h800").profile.name, "h800");
  EXPECT_EQ(load_cluster("dgx-h100").profile.name, "h100");
  EXPECT_EQ(load_cluster("hgx-h200").profile.name, "h200");
  EXPECT_EQ(load_cluster("dgx-a100").profile.name, "a100");
  EXPECT_THROW(load_hw_profile("nosuch"), Error);
}

}  // namespace
}  // namespace pipesim
