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
#include <nlohmann/json.hpp>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/presets.hpp"

namespace pipesim {
namespace {

using Json = nlohmann::json;

// Bounds that keep products such as nodes x gpus_per_node inside an int.
constexpr long long kMaxNodes = 1'000'000;
constexpr long long kMaxPerNode = 1024;
constexpr long long kMaxGpus = 1 << 20;

// Reads one JSON object, remembering which keys it consumed so leftovers can be reported as unknown.
class Reader {
 public:
  Reader(const Json& object, std::string source, std::string path)
      : object_(object), source_(std::move(source)), path_(std::move(path)) {
    if (!object.is_object())
      throw Error(fmt::format("{}: {}: expected an object, got {}", source_, where(), object.dump()));
  }

  // An integer >= minimum (1: "positive", 0: "non-negative"); `fallback` when absent and optional.
  int integer(const char* key, int minimum, long long maximum, std::optional<int> fallback = std::nullopt) {
    std::string what = minimum == 0   ? "a non-negative integer"
                       : minimum == 1 ? "a positive integer"
                                      : fmt::format("an integer of at least {}", minimum);
    const Json* v = find(key, fallback.has_value(), what);
    if (!v) return *fallback;
    if (!v->is_number_integer() || v->get<long long>() < minimum)
      throw Error(fmt::format("{}: {}: expected {}, got {}", source_, at(key), what, v->dump()));
    if (v->get<long long>() > maximum)
      throw Error(fmt::format("{}: {}: expected at most {}, got {}", source_, at(key), maximum, v->dump()));
    return static_cast<int>(v->get<long long>());
  }

  // A finite number > 0 (or >= 0 when zero_ok); `fallback` when absent and optional.
  double number(const char* key, bool zero_ok, std::optional<double> fallback = std::nullopt) {
    const char* what = zero_ok ? "a non-negative number" : "a positive number";
    const Json* v = find(key, fallback.has_value(), what);
    if (!v) return *fallback;
    if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() < 0 ||
        (!zero_ok && v->get<double>() == 0))
      throw Error(fmt::format("{}: {}: expected {}, got {}", source_, at(key), what, v->dump()));
    return v->get<double>();
  }

  // A fraction in (0, 1], for efficiencies.
  double fraction(const char* key, double fallback) {
    double f = number(key, false, fallback);
    if (f > 1)
      throw Error(fmt::format("{}: {}: expected a fraction in (0, 1], got {}", source_, at(key), object_[key].dump()));
    return f;
  }

  std::string text(const char* key, std::optional<std::string> fallback = std::nullopt) {
    const Json* v = find(key, fallback.has_value(), "a string");
    if (!v) return *fallback;
    if (!v->is_string()) throw Error(fmt::format("{}: {}: expected a string, got {}", source_, at(key), v->dump()));
    return v->get<std::string>();
  }

  Reader child(const char* key) {
    const Json* v = find(key, false, "an object");
    return Reader(*v, source_, at(key));
  }

  // "comment" is free text anywhere; everything else must be a field we read.
  void no_unknown_keys() const {
    for (auto& [key, value] : object_.items())
      if (key != "comment" && std::find(seen_.begin(), seen_.end(), key) == seen_.end())
        throw Error(fmt::format("{}: {}: unknown field (known: {})", source_, at(key.c_str()), fmt::join(seen_, ", ")));
  }

 private:
  const Json* find(const char* key, bool optional, std::string_view what) {
    seen_.emplace_back(key);
    if (object_.contains(key)) return &object_[key];
    if (optional) return nullptr;
    throw Error(fmt::format("{}: {}: missing (expected {})", source_, at(key), what));
  }
  std::string where() const { return path_.empty() ? "the top level" : path_; }
  std::string at(const char* key) const { return path_.empty() ? std::string(key) : path_ + "." + key; }

  const Json& object_;
  std::string source_;
  std::string path_;
  std::vector<std::string> seen_;
};

GpuSpec parse_gpu(Reader r) {
  GpuSpec g;
  const GpuSpec defaults;
  g.name = r.text("name");
  g.bf16_tflops = r.number("bf16_tflops", false);
  // GPUs without FP8 tensor cores (A100) run FP8 models at the BF16 rate.
  g.fp8_tflops = r.number("fp8_tflops", false, g.bf16_tflops);
  g.hbm_GBps = r.number("hbm_GBps", false);
  g.hbm_GiB = r.number("hbm_GiB", false);
  g.sms = r.integer("sms", 1, 100'000);
  g.gemm_efficiency_max = r.fraction("gemm_efficiency_max", defaults.gemm_efficiency_max);
  g.gemm_efficiency_knee = r.number("gemm_efficiency_knee", false, defaults.gemm_efficiency_knee);
  g.memory_efficiency = r.fraction("memory_efficiency", defaults.memory_efficiency);
  r.no_unknown_keys();
  return g;
}

std::string stem_of(std::string_view source) {
  return std::filesystem::path(std::string(source)).stem().string();
}

}  // namespace

ClusterSpec parse_cluster(std::string_view json_text, std::string_view source) {
  Json json;
  try {
    json = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  Reader r(json, std::string(source), "");
  ClusterSpec c;
  const ClusterSpec defaults;
  c.name = r.text("name", stem_of(source));
  c.source = r.text("source", "");
  c.nodes = r.integer("nodes", 1, kMaxNodes);
  c.gpus_per_node = r.integer("gpus_per_node", 1, kMaxPerNode);
  c.gpu = parse_gpu(r.child("gpu"));
  c.nvlink_GBps = r.number("nvlink_GBps", false);
  c.nvlink_latency_us = r.number("nvlink_latency_us", true);
  c.nics_per_node = r.integer("nics_per_node", 1, kMaxPerNode, c.gpus_per_node);  // DGX/HGX: one per GPU
  c.nic_GBps = r.number("nic_GBps", false);
  c.nic_effective_GBps = r.number("nic_effective_GBps", false);
  c.ib_latency_us = r.number("ib_latency_us", true);
  c.leaf_switch_ports = r.integer("leaf_switch_ports", 2, 100'000, defaults.leaf_switch_ports);
  c.spine_switches = r.integer("spine_switches", 0, 100'000, defaults.spine_switches);
  c.comm_sms = r.integer("comm_sms", 0, 100'000, defaults.comm_sms);
  r.no_unknown_keys();
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

std::vector<std::string> cluster_presets() {
  std::vector<std::string> names;
  for (auto& file : cluster_preset_files()) names.emplace_back(file.name);
  return names;
}

ClusterSpec load_cluster(std::string_view name_or_path) {
  for (auto& file : cluster_preset_files())
    if (file.name == name_or_path) return parse_cluster(file.text, std::string(name_or_path) + ".json");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(std::filesystem::path(name_or_path), ec))
    throw Error(fmt::format("unknown cluster '{}': not a preset ({}) nor a file", name_or_path,
                            fmt::join(cluster_presets(), ", ")));
  return parse_cluster(read_file(std::string(name_or_path)), name_or_path);
}

}  // namespace pipesim
