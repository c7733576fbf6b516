// Cluster presets and user files: every preset loads with the published numbers, and every kind of bad
// input is refused with a message naming the file, the JSON path and the value.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "topologies/cluster.hpp"

namespace pipesim {
namespace {

using Json = nlohmann::json;

Json valid_json() {
  return Json::parse(R"({
    "name": "tiny", "source": "test", "comment": "free text is allowed",
    "nodes": 2, "gpus_per_node": 4,
    "gpu": {"name": "G", "bf16_tflops": 100, "hbm_GBps": 1000, "hbm_GiB": 40, "sms": 50, "comment": "here too"},
    "nvlink_GBps": 100, "nvlink_latency_us": 2, "nic_GBps": 25, "nic_effective_GBps": 20, "ib_latency_us": 4
  })");
}

// Writes `json` to a temporary file and loads it; returns the error message ("" if it loaded).
class ClusterFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("pipesim_cluster_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json");
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string error_of_text(const std::string& text) {
    write_file_atomically(path_, text);
    try {
      load_cluster(path_.string());
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2) << "bad input must be an input error";
      return e.what();
    }
    return "";
  }
  std::string error_of(const Json& json) { return error_of_text(json.dump()); }
  std::string path() const { return path_.string(); }

  std::filesystem::path path_;
};

TEST(ClusterPresets, ListsTheFourPresetsInOrder) {
  EXPECT_EQ(cluster_presets(), (std::vector<std::string>{"deepseek-h800", "dgx-a100", "dgx-h100", "hgx-h200"}));
}

TEST(ClusterPresets, EveryPresetLoadsNamesItselfAndCitesASource) {
  for (auto& name : cluster_presets()) {
    SCOPED_TRACE(name);
    ClusterSpec c = load_cluster(name);
    EXPECT_EQ(c.name, name);
    EXPECT_GT(c.source.size(), 100u) << "the source must say where the numbers come from";
    EXPECT_NE(c.source.find("ssumption"), std::string::npos) << "and which numbers are assumptions";
    EXPECT_NO_THROW(validate_cluster(c, name));
    EXPECT_EQ(c.nics_per_node, c.gpus_per_node);
  }
}

TEST(ClusterPresets, DeepSeekH800MatchesTheReport) {
  ClusterSpec c = load_cluster("deepseek-h800");
  EXPECT_EQ(c.nodes, 256);
  EXPECT_EQ(c.gpus_per_node, 8);
  EXPECT_EQ(c.total_gpus(), 2048);
  EXPECT_EQ(c.gpu.name, "H800");
  EXPECT_DOUBLE_EQ(c.gpu.bf16_tflops, 989);
  EXPECT_DOUBLE_EQ(c.gpu.fp8_tflops, 1979);
  EXPECT_DOUBLE_EQ(c.gpu.hbm_GBps, 3350);
  EXPECT_DOUBLE_EQ(c.gpu.hbm_GiB, 80);
  EXPECT_EQ(c.gpu.sms, 132);
  EXPECT_DOUBLE_EQ(c.nvlink_GBps, 160);
  EXPECT_DOUBLE_EQ(c.nic_GBps, 50);
  EXPECT_DOUBLE_EQ(c.nic_effective_GBps, 40);
  EXPECT_EQ(c.comm_sms, 20);
  EXPECT_EQ(c.leaf_switch_ports, 64);
  // Efficiencies the preset leaves out take the struct's defaults.
  EXPECT_DOUBLE_EQ(c.gpu.gemm_efficiency_max, 0.75);
  EXPECT_DOUBLE_EQ(c.gpu.gemm_efficiency_knee, 1024);
  EXPECT_DOUBLE_EQ(c.gpu.memory_efficiency, 0.8);
  // What an "80 GB" H800 reports to CUDA: 84943110144 bytes (DeepSeek's trace), the plan's capacity.
  EXPECT_DOUBLE_EQ(c.gpu.usable_GiB, 79.109);
  EXPECT_DOUBLE_EQ(c.gpu.capacity_bytes(), 79.109 * 1073741824.0);
  EXPECT_NEAR(c.gpu.capacity_bytes(), 84943110144.0, 1e6);
  EXPECT_EQ(c.profile.name, "h800");
}

TEST(ClusterPresets, OtherPresetsCarryTheirDatasheetNumbers) {
  ClusterSpec a100 = load_cluster("dgx-a100");
  EXPECT_EQ(a100.total_gpus(), 2240);
  EXPECT_DOUBLE_EQ(a100.gpu.bf16_tflops, 312);
  EXPECT_DOUBLE_EQ(a100.gpu.fp8_tflops, 312) << "A100 has no FP8: it runs at the BF16 rate";
  EXPECT_EQ(a100.gpu.sms, 108);
  EXPECT_DOUBLE_EQ(a100.nic_GBps, 25);
  ClusterSpec h100 = load_cluster("dgx-h100");
  EXPECT_DOUBLE_EQ(h100.gpu.hbm_GBps, 3350);
  EXPECT_GT(h100.nvlink_GBps, a100.nvlink_GBps);
  ClusterSpec h200 = load_cluster("hgx-h200");
  EXPECT_EQ(h200.nodes, 1);
  EXPECT_DOUBLE_EQ(h200.gpu.hbm_GBps, 4800);
  EXPECT_DOUBLE_EQ(h200.gpu.hbm_GiB, 141);
}

TEST_F(ClusterFile, ValidFileLoadsWithDefaults) {
  EXPECT_EQ(error_of(valid_json()), "");
  ClusterSpec c = load_cluster(path());
  EXPECT_EQ(c.name, "tiny");
  EXPECT_DOUBLE_EQ(c.gpu.fp8_tflops, 100) << "fp8 defaults to the bf16 rate";
  EXPECT_EQ(c.nics_per_node, 4) << "one NIC per GPU unless told";
  EXPECT_EQ(c.spine_switches, 0);
  EXPECT_EQ(c.leaf_switch_ports, 64);
  EXPECT_EQ(c.comm_sms, 20);
}

TEST_F(ClusterFile, UsableMemoryAndAllocatorReserve) {
  Json j = valid_json();
  EXPECT_EQ(error_of(j), "");
  auto plain = load_cluster(path());
  EXPECT_DOUBLE_EQ(plain.gpu.capacity_bytes(), plain.gpu.hbm_GiB * 1073741824.0);  // defaults: all of it
  j["gpu"]["usable_GiB"] = plain.gpu.hbm_GiB * 0.9;
  j["gpu"]["allocator_reserve"] = 0.25;
  EXPECT_EQ(error_of(j), "");
  EXPECT_DOUBLE_EQ(load_cluster(path()).gpu.capacity_bytes(), plain.gpu.hbm_GiB * 0.9 * 0.75 * 1073741824.0);
  j["gpu"]["allocator_reserve"] = 1.0;
  EXPECT_NE(error_of(j).find("gpu.allocator_reserve: expected a fraction in [0, 1), got 1"), std::string::npos);
  j["gpu"]["allocator_reserve"] = 0;
  j["gpu"]["usable_GiB"] = plain.gpu.hbm_GiB * 2;
  EXPECT_NE(error_of(j).find("gpu.usable_GiB"), std::string::npos);
}

TEST_F(ClusterFile, NameDefaultsToTheFileStem) {
  Json j = valid_json();
  j.erase("name");
  EXPECT_EQ(error_of(j), "");
  EXPECT_EQ(load_cluster(path()).name, path_.stem().string());
}

TEST_F(ClusterFile, NegativeIntegerNamesPathAndValue) {
  Json j = valid_json();
  j["gpu"]["sms"] = -3;
  EXPECT_EQ(error_of(j), path() + ": gpu.sms: expected a positive integer, got -3");
}

TEST_F(ClusterFile, WrongTypesAreRefused) {
  Json j = valid_json();
  j["nvlink_GBps"] = "fast";
  EXPECT_EQ(error_of(j), path() + ": nvlink_GBps: expected a positive number, got \"fast\"");
  j = valid_json();
  j["nodes"] = 2.5;
  EXPECT_EQ(error_of(j), path() + ": nodes: expected a positive integer, got 2.5");
  j = valid_json();
  j["gpu"] = 7;
  EXPECT_EQ(error_of(j), path() + ": gpu: expected an object, got 7");
  j = valid_json();
  j["gpu"]["name"] = 7;
  EXPECT_EQ(error_of(j), path() + ": gpu.name: expected a string, got 7");
}

TEST_F(ClusterFile, ZeroIsRefusedWhereAPositiveNumberIsNeededButLatencyMayBeZero) {
  Json j = valid_json();
  j["nic_GBps"] = 0;
  EXPECT_EQ(error_of(j), path() + ": nic_GBps: expected a positive number, got 0");
  j = valid_json();
  j["ib_latency_us"] = 0;
  EXPECT_EQ(error_of(j), "");
  j["ib_latency_us"] = -1;
  EXPECT_EQ(error_of(j), path() + ": ib_latency_us: expected a non-negative number, got -1");
}

TEST_F(ClusterFile, UnknownFieldsAreNamed) {
  Json j = valid_json();
  j["nodez"] = 3;
  EXPECT_NE(error_of(j).find(path() + ": nodez: unknown field (known: "), std::string::npos) << error_of(j);
  j = valid_json();
  j["gpu"]["tflops"] = 3;
  EXPECT_NE(error_of(j).find(path() + ": gpu.tflops: unknown field"), std::string::npos) << error_of(j);
}

TEST_F(ClusterFile, MissingRequiredFieldsAreNamed) {
  Json j = valid_json();
  j.erase("nodes");
  EXPECT_EQ(error_of(j), path() + ": nodes: missing (expected a positive integer)");
  j = valid_json();
  j["gpu"].erase("hbm_GBps");
  EXPECT_EQ(error_of(j), path() + ": gpu.hbm_GBps: missing (expected a positive number)");
  j = valid_json();
  j.erase("gpu");
  EXPECT_EQ(error_of(j), path() + ": gpu: missing (expected an object)");
}

TEST_F(ClusterFile, RulesBetweenFieldsAreChecked) {
  Json j = valid_json();
  j["nic_effective_GBps"] = 30;
  EXPECT_EQ(error_of(j), path() + ": nic_effective_GBps: 30 exceeds the line rate nic_GBps 25");
  j = valid_json();
  j["nics_per_node"] = 5;
  EXPECT_EQ(error_of(j), path() + ": nics_per_node: expected 1..gpus_per_node (4), got 5");
  j = valid_json();
  j["gpu"]["memory_efficiency"] = 1.5;
  EXPECT_EQ(error_of(j), path() + ": gpu.memory_efficiency: expected a fraction in (0, 1], got 1.5");
  j = valid_json();
  j["comm_sms"] = 50;
  EXPECT_EQ(error_of(j), path() + ": comm_sms: expected 0..49 (fewer than gpu.sms), got 50");
  j = valid_json();
  j["leaf_switch_ports"] = 1;
  EXPECT_EQ(error_of(j), path() + ": leaf_switch_ports: expected an integer of at least 2, got 1");
  j = valid_json();
  j["leaf_switch_ports"] = 4;
  j["nodes"] = 9;  // 4-port switches: at most 4 leaves of 2 nodes
  EXPECT_EQ(error_of(j), path() + ": nodes: 9 exceeds what a two-layer fat tree of 4-port switches connects (8)");
}

TEST_F(ClusterFile, BrokenJsonAndMissingFilesAreInputErrors) {
  EXPECT_NE(error_of_text("{\"nodes\": ").find(path() + ": not valid JSON"), std::string::npos);
  EXPECT_NE(error_of_text("[1, 2]").find(path() + ": the top level: expected an object"), std::string::npos);
  try {
    load_cluster("/no/such/cluster.json");
    FAIL() << "a missing file must throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "unknown cluster '/no/such/cluster.json': not a preset (deepseek-h800, dgx-a100, dgx-h100, hgx-h200) "
              "nor a file");
    EXPECT_EQ(e.exit_code(), 2);
  }
}

TEST(ClusterValidate, SpecsBuiltInCodeAreCheckedToo) {
  ClusterSpec c = load_cluster("hgx-h200");
  c.nodes = 0;
  EXPECT_THROW(validate_cluster(c, "code"), Error);
  c = load_cluster("hgx-h200");
  c.nodes = 200'000;
  c.leaf_switch_ports = 1000;
  try {
    validate_cluster(c, "code");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "code: nodes x gpus_per_node: 200000 x 8 exceeds 1048576 GPUs");
  }
  c = load_cluster("hgx-h200");
  c.nvlink_GBps = std::nan("");
  try {
    validate_cluster(c, "code");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "code: nvlink_GBps: expected a positive number, got nan");
  }
}

}  // namespace
}  // namespace pipesim
