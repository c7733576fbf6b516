// Loading and validating cluster specs (see cluster.hpp). JSON is checked field by field where it is read,
// so an error names the file, the JSON path and the value; validate_cluster() then checks ranges and the
// rules between fields, for specs from JSON and from code alike.
#include "topologies/cluster.hpp"

#include <algorithm>
#include <cmath>
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

// Bounds that keep products such as nodes x gpus_per_node inside an int.
constexpr long long kMaxNodes = 1'000'000;
constexpr long long kMaxPerNode = 1024;
constexpr long long kMaxGpus = 1 << 20;

// A required field that is absent: "<path>.<key>: missing (expected <what>)". JsonReader::child says only
// "missing"; cluster files name what belongs there. The root's children are "<source>: key".
[[noreturn]] void missing(const JsonReader& r, std::string_view source, std::string_view key, std::string_view what) {
  std::string path = r.path() == source ? fmt::format("{}: {}", source, key) : fmt::format("{}.{}", r.path(), key);
  throw Error(fmt::format("{}: missing (expected {})", path, what));
}

// An integer in [minimum, maximum] (minimum 1: "positive", 0: "non-negative"); `fallback` when absent.
int integer(const JsonReader& r, std::string_view source, std::string_view key, int minimum, long long maximum,
            std::optional<int> fallback = std::nullopt) {
  std::string what = minimum == 0   ? "a non-negative integer"
                     : minimum == 1 ? "a positive integer"
                                    : fmt::format("an integer of at least {}", minimum);
  if (!r.has(key)) {
    if (!fallback) missing(r, source, key, what);
    return *fallback;
  }
  JsonReader v = r.child(key);
  if (!v.node().is_number_integer()) v.fail(fmt::format("expected {}, got {}", what, v.node().dump()));
  std::int64_t n = v.get<std::int64_t>();
  if (n < minimum) v.fail(fmt::format("expected {}, got {}", what, n));
  if (n > maximum) v.fail(fmt::format("expected at most {}, got {}", maximum, n));
  return static_cast<int>(n);
}

// A finite number > 0 (or >= 0 when zero_ok); `fallback` when absent.
double number(const JsonReader& r, std::string_view source, std::string_view key, bool zero_ok,
              std::optional<double> fallback = std::nullopt) {
  const char* what = zero_ok ? "a non-negative number" : "a positive number";
  if (!r.has(key)) {
    if (!fallback) missing(r, source, key, what);
    return *fallback;
  }
  JsonReader v = r.child(key);
  const Json& j = v.node();
  if (!j.is_number() || !std::isfinite(j.get<double>()) || j.get<double>() < 0 || (!zero_ok && j.get<double>() == 0))
    v.fail(fmt::format("expected {}, got {}", what, j.dump()));
  return v.get<double>();
}

// A fraction in (0, 1], for efficiencies.
double fraction(const JsonReader& r, std::string_view source, std::string_view key, double fallback) {
  double f = number(r, source, key, false, fallback);
  if (f > 1) r.child(key).fail(fmt::format("expected a fraction in (0, 1], got {}", r.child(key).node().dump()));
  return f;
}

GpuSpec parse_gpu(const JsonReader& r, std::string_view source) {
  GpuSpec g;
  const GpuSpec defaults;
  r.expect_object();
  if (!r.has("name")) missing(r, source, "name", "a string");
  g.name = r.required<std::string>("name");
  g.bf16_tflops = number(r, source, "bf16_tflops", false);
  // GPUs without FP8 tensor cores (A100) run FP8 models at the BF16 rate.
  g.fp8_tflops = number(r, source, "fp8_tflops", false, g.bf16_tflops);
  g.hbm_GBps = number(r, source, "hbm_GBps", false);
  g.hbm_GiB = number(r, source, "hbm_GiB", false);
  g.usable_GiB = number(r, source, "usable_GiB", false, g.hbm_GiB);
  g.allocator_reserve = r.has("allocator_reserve") ? r.required<double>("allocator_reserve") : 0.0;
  g.sms = integer(r, source, "sms", 1, 100'000);
  g.gemm_efficiency_max = fraction(r, source, "gemm_efficiency_max", defaults.gemm_efficiency_max);
  g.gemm_efficiency_knee = number(r, source, "gemm_efficiency_knee", false, defaults.gemm_efficiency_knee);
  g.memory_efficiency = fraction(r, source, "memory_efficiency", defaults.memory_efficiency);
  r.only_keys({"name", "bf16_tflops", "fp8_tflops", "hbm_GBps", "hbm_GiB", "usable_GiB", "allocator_reserve", "sms",
               "gemm_efficiency_max",
               "gemm_efficiency_knee", "memory_efficiency", "comment"});
  return g;
}

std::string stem_of(std::string_view source) {
  return std::filesystem::path(std::string(source)).stem().string();
}

}  // namespace

ClusterSpec parse_cluster(std::string_view json_text, std::string_view source) {
  Json json = parse_json(json_text, source);
  JsonReader r(json, std::string(source));
  if (!json.is_object()) r.fail(fmt::format("the top level: expected an object, got {}", json.dump()));
  ClusterSpec c;
  const ClusterSpec defaults;
  c.name = r.optional<std::string>("name", stem_of(source));
  c.source = r.optional<std::string>("source", "");
  c.nodes = integer(r, source, "nodes", 1, kMaxNodes);
  c.gpus_per_node = integer(r, source, "gpus_per_node", 1, kMaxPerNode);
  if (!r.has("gpu")) missing(r, source, "gpu", "an object");
  c.gpu = parse_gpu(r.child("gpu"), source);
  c.nvlink_GBps = number(r, source, "nvlink_GBps", false);
  c.nvlink_latency_us = number(r, source, "nvlink_latency_us", true);
  c.nics_per_node = integer(r, source, "nics_per_node", 1, kMaxPerNode, c.gpus_per_node);  // DGX/HGX: one per GPU
  c.nic_GBps = number(r, source, "nic_GBps", false);
  c.nic_effective_GBps = number(r, source, "nic_effective_GBps", false);
  c.ib_latency_us = number(r, source, "ib_latency_us", true);
  c.leaf_switch_ports = integer(r, source, "leaf_switch_ports", 2, 100'000, defaults.leaf_switch_ports);
  c.spine_switches = integer(r, source, "spine_switches", 0, 100'000, defaults.spine_switches);
  c.comm_sms = integer(r, source, "comm_sms", 0, 100'000, defaults.comm_sms);
  c.profile = default_profile(c.gpu);
  if (r.has("hw_profile")) {
    // A preset name, or a path relative to the cluster file's folder.
    auto name = r.required<std::string>("hw_profile");
    auto beside = std::filesystem::path(std::string(source)).parent_path() / name;
    std::error_code ec;
    bool preset = false;
    for (auto& p : hw_profile_presets()) preset |= p == name;
    try {
      c.profile = load_hw_profile(!preset && std::filesystem::is_regular_file(beside, ec) ? beside.string() : name);
    } catch (const Error& e) {
      r.child("hw_profile").fail(e.what());
    }
  }
  r.only_keys({"hw_profile", "name", "source", "nodes", "gpus_per_node", "gpu", "nvlink_GBps", "nvlink_latency_us", "nics_per_node",
               "nic_GBps", "nic_effective_GBps", "ib_latency_us", "leaf_switch_ports", "spine_switches", "comm_sms",
               "comment"});
  validate_cluster(c, source);
  return c;
}

void validate_cluster(const ClusterSpec& c, std::string_view source) {
  auto fail = [&](const std::string& what) { throw Error(fmt::format("{}: {}", source, what)); };
  auto positive = [&](const char* field, double value) {
    if (!(value > 0) || !std::isfinite(value))
      fail(fmt::format("{}: expected a positive number, got {}", field, value));
  };
  auto non_negative = [&](const char* field, double value) {
    if (!(value >= 0) || !std::isfinite(value))
      fail(fmt::format("{}: expected a non-negative number, got {}", field, value));
  };
  if (c.nodes < 1 || c.nodes > kMaxNodes) fail(fmt::format("nodes: expected 1..{}, got {}", kMaxNodes, c.nodes));
  if (c.gpus_per_node < 1 || c.gpus_per_node > kMaxPerNode)
    fail(fmt::format("gpus_per_node: expected 1..{}, got {}", kMaxPerNode, c.gpus_per_node));
  // The graph holds a few links per GPU; a million GPUs is far past any real cluster and still fits.
  if (static_cast<long long>(c.nodes) * c.gpus_per_node > kMaxGpus)
    fail(fmt::format("nodes x gpus_per_node: {} x {} exceeds {} GPUs", c.nodes, c.gpus_per_node, kMaxGpus));
  positive("gpu.bf16_tflops", c.gpu.bf16_tflops);
  positive("gpu.fp8_tflops", c.gpu.fp8_tflops);
  positive("gpu.hbm_GBps", c.gpu.hbm_GBps);
  positive("gpu.hbm_GiB", c.gpu.hbm_GiB);
  if (c.gpu.usable_GiB > c.gpu.hbm_GiB * 1.0737)  // GB vs GiB: a device reports at most its marketed bytes
    fail(fmt::format("gpu.usable_GiB: {} exceeds the {} GB the GPU has", c.gpu.usable_GiB, c.gpu.hbm_GiB));
  if (!(c.gpu.allocator_reserve >= 0 && c.gpu.allocator_reserve < 1))
    fail(fmt::format("gpu.allocator_reserve: expected a fraction in [0, 1), got {}", c.gpu.allocator_reserve));
  if (c.gpu.sms < 1) fail(fmt::format("gpu.sms: expected a positive integer, got {}", c.gpu.sms));
  positive("gpu.gemm_efficiency_max", c.gpu.gemm_efficiency_max);
  positive("gpu.gemm_efficiency_knee", c.gpu.gemm_efficiency_knee);
  positive("gpu.memory_efficiency", c.gpu.memory_efficiency);
  if (c.gpu.gemm_efficiency_max > 1 || c.gpu.memory_efficiency > 1)
    fail(fmt::format("gpu: efficiencies must be fractions in (0, 1], got gemm_efficiency_max {} and "
                     "memory_efficiency {}",
                     c.gpu.gemm_efficiency_max, c.gpu.memory_efficiency));
  positive("nvlink_GBps", c.nvlink_GBps);
  non_negative("nvlink_latency_us", c.nvlink_latency_us);
  positive("nic_GBps", c.nic_GBps);
  positive("nic_effective_GBps", c.nic_effective_GBps);
  non_negative("ib_latency_us", c.ib_latency_us);
  if (c.nics_per_node < 1 || c.nics_per_node > c.gpus_per_node)
    fail(fmt::format("nics_per_node: expected 1..gpus_per_node ({}), got {}", c.gpus_per_node, c.nics_per_node));
  if (c.nic_effective_GBps > c.nic_GBps)
    fail(fmt::format("nic_effective_GBps: {} exceeds the line rate nic_GBps {}", c.nic_effective_GBps, c.nic_GBps));
  if (c.leaf_switch_ports < 2)
    fail(fmt::format("leaf_switch_ports: expected at least 2, got {}", c.leaf_switch_ports));
  if (c.spine_switches < 0)
    fail(fmt::format("spine_switches: expected a non-negative integer (0: sized automatically), got {}",
                     c.spine_switches));
  // A two-layer fat tree: each leaf gives half its ports to nodes, and each spine needs a port per leaf.
  long long max_nodes = static_cast<long long>(c.leaf_switch_ports) * (c.leaf_switch_ports / 2);
  if (c.nodes > c.leaf_switch_ports && c.nodes > max_nodes)
    fail(fmt::format("nodes: {} exceeds what a two-layer fat tree of {}-port switches connects ({})", c.nodes,
                     c.leaf_switch_ports, max_nodes));
  if (c.comm_sms < 0 || c.comm_sms >= c.gpu.sms)
    fail(fmt::format("comm_sms: expected 0..{} (fewer than gpu.sms), got {}", c.gpu.sms - 1, c.comm_sms));
}

std::vector<std::string> cluster_presets() { return preset_names(cluster_preset_files()); }

ClusterSpec load_cluster(std::string_view name_or_path) {
  auto preset = preset_or_file(cluster_preset_files(), name_or_path, "cluster");
  return parse_cluster(preset.text, preset.source);
}

}  // namespace pipesim
