// Hardware profiles: JSON in and out, interpolation, and the datasheet default (see hw_profile.hpp).
#include "topologies/hw_profile.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "common/presets.hpp"
#include "topologies/cluster.hpp"

namespace pipesim {

double RateTable::at(double x) const {
  if (points.empty()) return 0;
  if (x <= points.front().x) return points.front().y;
  if (x >= points.back().x) return points.back().y;
  auto hi = std::upper_bound(points.begin(), points.end(), x, [](double v, const RatePoint& p) { return v < p.x; });
  auto lo = hi - 1;
  return lo->y + (hi->y - lo->y) * (x - lo->x) / (hi->x - lo->x);
}

HwProfile default_profile(const GpuSpec& gpu) {
  HwProfile p;
  p.name = "default-" + gpu.name;
  p.gpu = gpu.name;
  std::string why = fmt::format("default: {} datasheet peak x gemm_efficiency_max {} above smallest dimension {}, "
                                "linearly less below (assumed, no measurement)",
                                gpu.name, gpu.gemm_efficiency_max, gpu.gemm_efficiency_knee);
  p.source = "default: datasheet peaks and pipesim's generic efficiency model";
  for (auto [precision, peak] : {std::pair{"bf16", gpu.bf16_tflops}, std::pair{"fp8", gpu.fp8_tflops}}) {
    double top = peak * gpu.gemm_efficiency_max;
    p.gemm_tflops[precision] = {{{1, top / gpu.gemm_efficiency_knee}, {gpu.gemm_efficiency_knee, top}}, why};
  }
  // Attention at the BF16 GEMM rate, as the model has always priced it.
  double attention = gpu.bf16_tflops * gpu.gemm_efficiency_max;
  p.attention_forward_tflops = {attention, "default: as a large BF16 GEMM (assumed)"};
  p.attention_backward_tflops = {attention, "default: as a large BF16 GEMM (assumed)"};
  p.memory_GBps = {gpu.hbm_GBps * gpu.memory_efficiency,
                   fmt::format("default: HBM {} GB/s x memory_efficiency {} (assumed)", gpu.hbm_GBps, gpu.memory_efficiency)};
  p.memory_kernel_us = {0, "default: no fixed time per kernel (assumed)"};
  p.launch_gap_us = {0, "default: kernels back to back (assumed)"};
  p.p2p_overhead_us = {0, "default: no software time beyond the link latency (assumed)"};
  p.comm_compute_slowdown = {0, "default: compute on the SMs communication leaves, sms / (sms - comm_sms)"};
  p.pair_stall_fraction = {0, "default: no stalls (assumed)"};
  return p;
}

std::string gemm_table_name(std::string_view precision, GemmKind kind) {
  if (kind == GemmKind::Forward) return std::string(precision);
  return fmt::format("{}.{}", precision, kind == GemmKind::Dgrad ? "dgrad" : "wgrad");
}

double gemm_tflops(const HwProfile& profile, std::string_view precision, double smallest_dim, GemmKind kind) {
  for (auto& name : {gemm_table_name(precision, kind), std::string(precision), std::string("bf16")}) {
    auto it = profile.gemm_tflops.find(name);
    if (it != profile.gemm_tflops.end()) return it->second.at(smallest_dim);
  }
  throw Error(fmt::format("hardware profile {}: no GEMM table for {} and no bf16 table", profile.name, precision));
}

const RateTable* comm_table(const HwProfile& profile, std::string_view kind, int ep) {
  for (auto& name : {fmt::format("{}.ep{}", kind, ep), std::string(kind)}) {
    auto it = profile.comm_GBps.find(name);
    if (it != profile.comm_GBps.end()) return &it->second;
  }
  return nullptr;
}

namespace {

// Every rate and time lies in [1e-6, 1e6] of its unit (TFLOP/s, GB/s, us): wide enough for a profile fitted
// from pipesim's own CPU runs (GFLOP/s, a GEMM table's small-dimension end below that), narrow enough that
// no product or quotient of them leaves a double's comfortable range.
constexpr double kLowest = 1e-6, kHighest = 1e6;

Figure read_figure(const JsonReader& r, std::string_view key, bool allow_zero, double highest = kHighest) {
  auto f = r.child(key);
  f.expect_object();
  f.only_keys({"value", "source"});
  Figure out{f.required<double>("value"), f.required<std::string>("source")};
  if (!(allow_zero && out.value == 0) && !(out.value >= kLowest && out.value <= highest))
    f.child("value").fail(fmt::format("expected {}a number in [{}, {}], got {}", allow_zero ? "0 or " : "", kLowest,
                                      highest, out.value));
  if (out.source.empty()) f.child("source").fail("every figure names its source");
  return out;
}

RateTable read_table(const JsonReader& t) {
  t.expect_object();
  t.only_keys({"points", "source"});
  RateTable out;
  out.source = t.required<std::string>("source");
  if (out.source.empty()) t.child("source").fail("every table names its source");
  for (auto& p : t.child("points").elements()) {
    p.expect_object();
    p.only_keys({"x", "y"});
    RatePoint point{p.required<double>("x"), p.required<double>("y")};
    if (!(point.x > 0 && point.x <= 1e15)) p.child("x").fail(fmt::format("expected a number in (0, 1e15], got {}", point.x));
    if (!(point.y >= kLowest && point.y <= kHighest))
      p.child("y").fail(fmt::format("expected a number in [{}, {}], got {}", kLowest, kHighest, point.y));
    if (!out.points.empty() && point.x <= out.points.back().x)
      p.child("x").fail(fmt::format("points must be in increasing x; {} follows {}", point.x, out.points.back().x));
    out.points.push_back(point);
  }
  if (out.points.empty()) t.child("points").fail("a table needs at least one point");
  return out;
}

std::map<std::string, RateTable, std::less<>> read_tables(const JsonReader& r, std::string_view key,
                                                          std::initializer_list<std::string_view> known) {
  std::map<std::string, RateTable, std::less<>> out;
  if (!r.has(key)) return out;
  auto tables = r.child(key);
  tables.expect_object();
  if (known.size() > 0) tables.only_keys(known);
  for (auto& [name, _] : tables.node().items()) {
    if (known.size() == 0) {  // communication: a collective, optionally at one EP size ("dispatch.ep16")
      auto kind = name.substr(0, name.find('.'));
      bool ok = kind == "dispatch" || kind == "combine" || kind == "all_to_all" || kind == "all_reduce" ||
                kind == "all_gather" || kind == "reduce_scatter" || kind == "p2p";
      auto suffix = name.size() > kind.size() ? name.substr(kind.size()) : std::string();
      if (ok && !suffix.empty())
        ok = suffix.size() > 3 && suffix.rfind(".ep", 0) == 0 &&
             suffix.find_first_not_of("0123456789", 3) == std::string::npos;
      if (!ok)
        tables.child(name).fail("unknown table (dispatch, combine, all_to_all, all_reduce, all_gather, reduce_scatter, "
                                "p2p, optionally .ep<N>)");
    }
    out[name] = read_table(tables.child(name));
  }
  return out;
}

nlohmann::ordered_json figure_json(const Figure& f) {
  return {{"value", f.value}, {"source", f.source}};
}

nlohmann::ordered_json tables_json(const std::map<std::string, RateTable, std::less<>>& tables) {
  auto j = nlohmann::ordered_json::object();
  for (auto& [name, t] : tables) {
    auto points = nlohmann::ordered_json::array();
    for (auto& p : t.points) points.push_back({{"x", p.x}, {"y", p.y}});
    j[name] = {{"points", points}, {"source", t.source}};
  }
  return j;
}

}  // namespace

HwProfile parse_hw_profile(std::string_view json_text, std::string_view source) {
  auto doc = parse_json(json_text, source);
  JsonReader r(doc, std::string(source));
  r.expect_object();
  r.only_keys({"name", "gpu", "source", "gemm_tflops", "attention_forward_tflops", "attention_backward_tflops",
               "memory_GBps", "memory_kernel_us", "launch_gap_us", "comm_GBps", "p2p_overhead_us", "comm_compute_slowdown", "pair_stall_fraction", "comment"});
  HwProfile p;
  p.name = r.required<std::string>("name");
  p.gpu = r.required<std::string>("gpu");
  p.source = r.required<std::string>("source");
  // tf32, fp32 and fp64: tables fitted from pipesim's own runs (docs/gpu-runtime.md §10).
  p.gemm_tflops = read_tables(r, "gemm_tflops", {"fp8", "bf16", "fp16", "tf32", "fp32", "fp64", "fp8.dgrad", "fp8.wgrad",
                                                 "bf16.dgrad", "bf16.wgrad", "fp16.dgrad", "fp16.wgrad", "tf32.dgrad",
                                                 "tf32.wgrad", "fp32.dgrad", "fp32.wgrad", "fp64.dgrad", "fp64.wgrad"});
  if (!p.gemm_tflops.count("bf16"))
    r.child("gemm_tflops").fail("a profile needs a bf16 table (FLOPs outside FP8 GEMMs are priced with it)");
  p.attention_forward_tflops = read_figure(r, "attention_forward_tflops", false);
  p.attention_backward_tflops = read_figure(r, "attention_backward_tflops", false);
  p.memory_GBps = read_figure(r, "memory_GBps", false);
  p.memory_kernel_us = r.has("memory_kernel_us") ? read_figure(r, "memory_kernel_us", true)
                                                 : Figure{0, "default: no fixed time per kernel (assumed)"};
  p.launch_gap_us = read_figure(r, "launch_gap_us", true);
  p.comm_GBps = read_tables(r, "comm_GBps", {});
  p.p2p_overhead_us = r.has("p2p_overhead_us") ? read_figure(r, "p2p_overhead_us", true)
                                               : Figure{0, "default: no software time beyond the link latency (assumed)"};
  p.comm_compute_slowdown = read_figure(r, "comm_compute_slowdown", true, 100);
  if (p.comm_compute_slowdown.value != 0 && p.comm_compute_slowdown.value < 1)
    r.child("comm_compute_slowdown").child("value").fail(
        fmt::format("expected 0 (derive from SMs) or a factor >= 1, got {}", p.comm_compute_slowdown.value));
  p.pair_stall_fraction = read_figure(r, "pair_stall_fraction", true, 1);
  if (p.pair_stall_fraction.value >= 1)
    r.child("pair_stall_fraction").child("value").fail(
        fmt::format("expected a fraction below 1, got {}", p.pair_stall_fraction.value));
  return p;
}

nlohmann::ordered_json to_json(const HwProfile& p) {
  nlohmann::ordered_json j;
  j["name"] = p.name;
  j["gpu"] = p.gpu;
  j["source"] = p.source;
  j["gemm_tflops"] = tables_json(p.gemm_tflops);
  j["attention_forward_tflops"] = figure_json(p.attention_forward_tflops);
  j["attention_backward_tflops"] = figure_json(p.attention_backward_tflops);
  j["memory_GBps"] = figure_json(p.memory_GBps);
  j["memory_kernel_us"] = figure_json(p.memory_kernel_us);
  j["launch_gap_us"] = figure_json(p.launch_gap_us);
  j["comm_GBps"] = tables_json(p.comm_GBps);
  j["p2p_overhead_us"] = figure_json(p.p2p_overhead_us);
  j["comm_compute_slowdown"] = figure_json(p.comm_compute_slowdown);
  j["pair_stall_fraction"] = figure_json(p.pair_stall_fraction);
  return j;
}

std::vector<std::string> hw_profile_presets() { return preset_names(hw_profile_files()); }

HwProfile load_hw_profile(std::string_view name_or_path) {
  auto preset = preset_or_file(hw_profile_files(), name_or_path, "hardware profile");
  return parse_hw_profile(preset.text, preset.source);
}

}  // namespace pipesim
