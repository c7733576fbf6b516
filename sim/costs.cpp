// Cost tables: the command-line spec, the JSON cost file, and per-action lookup.
#include "sim/costs.hpp"

#include <charconv>
#include <cmath>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/text.hpp"
#include "common/units.hpp"
#include "traces/calibration.hpp"

namespace pipesim {

std::int64_t Costs::backward_ns(int stage) const {
  auto& c = stages[static_cast<std::size_t>(stage)];
  return c.B_ns >= 0 ? c.B_ns : c.I_ns + c.W_ns;
}

std::int64_t Costs::compute_ns(const Action& action, int rank) const {
  auto& c = stages[static_cast<std::size_t>(action.stage())];
  std::int64_t base = 0;
  switch (action.op) {
    case Op::F: base = c.F_ns; break;
    case Op::I: base = c.I_ns; break;
    case Op::W: base = c.W_ns; break;
    case Op::B: base = backward_ns(action.stage()); break;
    case Op::OverlapFB: {
      auto& back = action.pass[1];
      auto back_ns = back.op == Op::B ? backward_ns(back.stage) : stages[static_cast<std::size_t>(back.stage)].I_ns;
      base = c.FB_ns >= 0 && back.op == Op::B ? c.FB_ns : c.F_ns + back_ns;
      break;
    }
    default: return 0;
  }
  double slowdown = rank_slowdown.empty() ? 1.0 : rank_slowdown[static_cast<std::size_t>(rank)];
  return slowdown == 1.0 ? base : static_cast<std::int64_t>(std::llround(static_cast<double>(base) * slowdown));
}

const LinkCost& Costs::link(int src_rank, int dst_rank) const {
  if (rank_links.empty()) return p2p;
  return rank_links[static_cast<std::size_t>(src_rank) * rank_slowdown.size() + static_cast<std::size_t>(dst_rank)];
}

namespace {
std::int64_t over(const LinkCost& l, std::int64_t bytes) {
  if (l.bandwidth_bytes_per_ns <= 0 || bytes == 0) return l.latency_ns;
  return l.latency_ns + static_cast<std::int64_t>(std::llround(static_cast<double>(bytes) / l.bandwidth_bytes_per_ns));
}
}  // namespace

std::int64_t Costs::transfer_ns(std::int64_t bytes) const { return over(p2p, bytes); }
std::int64_t Costs::transfer_ns(int src_rank, int dst_rank, std::int64_t bytes) const {
  return over(link(src_rank, dst_rank), bytes);
}

namespace {

// Sets one field of a StageCost from "F" / "I" / ... ; `field` names it in errors.
void set_stage_field(StageCost& c, std::string_view key, std::string_view value, std::string_view field) {
  if (key == "F") c.F_ns = parse_duration_ns(value, field);
  else if (key == "I") c.I_ns = parse_duration_ns(value, field);
  else if (key == "W") c.W_ns = parse_duration_ns(value, field);
  else if (key == "B") c.B_ns = parse_duration_ns(value, field);
  else if (key == "FB") c.FB_ns = parse_duration_ns(value, field);
  else if (key == "activation_bytes") c.activation_bytes = parse_bytes(value, field);
  else if (key == "activation_memory") c.activation_memory = parse_bytes(value, field);
  else
    throw Error(fmt::format("{}: unknown cost '{}' (known: F, I, W, B, FB, activation_bytes, activation_memory)", field, key));
}

void apply_stage_object(StageCost& c, const nlohmann::json& object, const std::string& path) {
  if (!object.is_object()) throw Error(fmt::format("{}: expected an object such as {{\"F\": \"1.2ms\"}}", path));
  for (auto& [key, value] : object.items()) {
    if (!value.is_string())
      throw Error(fmt::format("{}.{}: expected a string with a unit such as \"1.2ms\", got {}", path, key, value.dump()));
    set_stage_field(c, key, value.get<std::string>(), path + "." + key);
  }
}

int index_key(const std::string& key, int limit, const std::string& path) {
  int value = -1;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), value);
  if (ec != std::errc() || end != key.data() + key.size() || value < 0 || value >= limit)
    throw Error(fmt::format("{}: '{}' is not an index in 0..{}", path, key, limit - 1));
  return value;
}

}  // namespace

Costs uniform_costs(std::string_view spec, int stages, int ranks) {
  StageCost c;
  for (auto& piece : split(spec)) {
    std::string_view item = piece;
    auto eq = item.find('=');
    if (eq == std::string_view::npos)
      throw Error(fmt::format("--cost: '{}' should be NAME=DURATION, e.g. F=1.2ms,I=1.3ms,W=0.7ms", item));
    auto key = item.substr(0, eq);
    if (key != "F" && key != "I" && key != "W" && key != "B" && key != "FB")
      throw Error(fmt::format("--cost: unknown pass '{}' (use F, I, W, B, FB)", key));
    set_stage_field(c, key, item.substr(eq + 1), fmt::format("--cost {}", key));
  }
  Costs costs;
  costs.stages.assign(static_cast<std::size_t>(stages), c);
  costs.rank_slowdown.assign(static_cast<std::size_t>(ranks), 1.0);
  return costs;
}

void apply_cost_file(Costs& costs, const nlohmann::json& file, std::string_view source) {
  std::string root(source);
  if (!file.is_object()) throw Error(fmt::format("{}: expected a JSON object at the top", root));
  int stages = static_cast<int>(costs.stages.size()), ranks = static_cast<int>(costs.rank_slowdown.size());
  for (auto& [key, value] : file.items()) {
    auto path = root + ": " + key;
    if (key == "comment" || key == "source") continue;
    if (key == "default") {
      for (auto& stage : costs.stages) apply_stage_object(stage, value, path);
    } else if (key == "stages") {
      if (!value.is_object()) throw Error(fmt::format("{}: expected {{\"STAGE\": {{...}}}}", path));
      for (auto& [index, object] : value.items())
        apply_stage_object(costs.stages[static_cast<std::size_t>(index_key(index, stages, path))], object,
                           path + "." + index);
    } else if (key == "ranks") {
      if (!value.is_object()) throw Error(fmt::format("{}: expected {{\"RANK\": {{\"slowdown\": 1.3}}}}", path));
      for (auto& [index, object] : value.items()) {
        auto where = path + "." + index;
        int r = index_key(index, ranks, path);
        if (!object.is_object() || !object.contains("slowdown") || !object["slowdown"].is_number() ||
            object.size() != 1)
          throw Error(fmt::format("{}: expected {{\"slowdown\": NUMBER}}, got {}", where, object.dump()));
        costs.rank_slowdown[static_cast<std::size_t>(r)] = object["slowdown"].get<double>();
      }
    } else if (key == "p2p") {
      if (!value.is_object()) throw Error(fmt::format("{}: expected {{\"latency\": \"20us\", \"bandwidth\": \"50GB/s\"}}", path));
      for (auto& [name, v] : value.items()) {
        auto where = path + "." + name;
        if (!v.is_string()) throw Error(fmt::format("{}: expected a string with a unit, got {}", where, v.dump()));
        if (name == "latency") costs.p2p.latency_ns = parse_duration_ns(v.get<std::string>(), where);
        else if (name == "bandwidth") costs.p2p.bandwidth_bytes_per_ns = parse_bandwidth_bytes_per_ns(v.get<std::string>(), where);
        else throw Error(fmt::format("{}: unknown field (use latency, bandwidth)", where));
      }
    } else if (key == "w_memory_fraction") {
      if (!value.is_number()) throw Error(fmt::format("{}: expected a number in 0..1, got {}", path, value.dump()));
      costs.w_memory_fraction = value.get<double>();
    } else {
      throw Error(fmt::format("{}: unknown field (known: default, stages, ranks, p2p, w_memory_fraction, comment)", path));
    }
  }
}

void validate_costs(const Costs& costs, int stages, int ranks) {
  if (!costs.rank_links.empty() && costs.rank_links.size() != static_cast<std::size_t>(ranks) * static_cast<std::size_t>(ranks))
    throw Error(fmt::format("costs: {} rank links for {} ranks", costs.rank_links.size(), ranks), Error::Kind::Internal);
  if (costs.stages.size() != static_cast<std::size_t>(stages) ||
      costs.rank_slowdown.size() != static_cast<std::size_t>(ranks))
    throw Error(fmt::format("costs cover {} stages and {} ranks, but the schedule has {} and {}", costs.stages.size(),
                            costs.rank_slowdown.size(), stages, ranks));
  for (std::size_t s = 0; s < costs.stages.size(); ++s) {
    auto& c = costs.stages[s];
    for (auto [name, ns] : {std::pair{"F", c.F_ns}, {"I", c.I_ns}, {"W", c.W_ns}})
      if (ns <= 0) throw Error(fmt::format("stage {}: {} is {} ns; every pass must take some time", s, name, ns));
  }
  for (std::size_t r = 0; r < costs.rank_slowdown.size(); ++r)
    if (!(costs.rank_slowdown[r] > 0) || !std::isfinite(costs.rank_slowdown[r]))
      throw Error(fmt::format("ranks.{}.slowdown is {}; it must be a positive factor", r, costs.rank_slowdown[r]));
  if (!(costs.w_memory_fraction >= 0 && costs.w_memory_fraction <= 1))
    throw Error(fmt::format("w_memory_fraction is {}; it must lie in 0..1", costs.w_memory_fraction));
}

}  // namespace pipesim

namespace pipesim {

Costs calibrated_costs(const Calibration& c, int ranks) {
  Costs costs;
  costs.rank_slowdown.assign(static_cast<std::size_t>(ranks), 1.0);
  costs.p2p.latency_ns = static_cast<std::int64_t>(std::llround(c.p2p_latency_ns));
  costs.p2p.bandwidth_bytes_per_ns = c.p2p_bandwidth_GBps;
  for (auto& d : c.stages) {
    StageCost s;
    // A stage that only ran fused backwards still needs I and W: split B evenly (W is not observable alone).
    s.B_ns = d.B_ns;
    s.F_ns = std::max<std::int64_t>(1, d.F_ns);
    s.I_ns = d.I_ns > 0 ? d.I_ns : std::max<std::int64_t>(1, d.B_ns / 2);
    s.W_ns = d.W_ns > 0 ? d.W_ns : std::max<std::int64_t>(1, d.B_ns - d.B_ns / 2);
    s.FB_ns = d.FB_ns;
    s.activation_bytes = c.activation_bytes;
    costs.stages.push_back(s);
  }
  return costs;  // an F&B pair not measured on a stage costs F + B, its halves run back to back
}

}  // namespace pipesim
