// Cost tables: the command-line spec, the JSON cost file, calibrations, resolution and per-action lookup.
#include "sim/costs.hpp"

#include <charconv>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "common/units.hpp"
#include "traces/calibration.hpp"

namespace pipesim {

std::int64_t Costs::transfer_ns(int src_rank, int dst_rank, std::int64_t bytes) const {
  auto& l = link(src_rank, dst_rank);
  if (l.bandwidth_bytes_per_ns <= 0 || bytes == 0) return l.latency_ns;
  return l.latency_ns + static_cast<std::int64_t>(std::llround(static_cast<double>(bytes) / l.bandwidth_bytes_per_ns));
}

Costs resolve_costs(const CostSpec& spec, const Schedule& schedule) {
  int stages = schedule.stages, ranks = schedule.ranks;
  if (!spec.rank_links.empty() &&
      spec.rank_links.size() != static_cast<std::size_t>(ranks) * static_cast<std::size_t>(ranks))
    throw Error(fmt::format("costs: {} rank links for {} ranks", spec.rank_links.size(), ranks), Error::Kind::Internal);
  if (spec.stages.size() != static_cast<std::size_t>(stages) || spec.rank_slowdown.size() != static_cast<std::size_t>(ranks))
    throw Error(fmt::format("costs cover {} stages and {} ranks, but the schedule has {} and {}", spec.stages.size(),
                            spec.rank_slowdown.size(), stages, ranks));
  // Ranges (docs/validation.md §8): every duration, slowed down, and every transfer within kMaxActionNs.
  double slowest = 1;
  for (std::size_t r = 0; r < spec.rank_slowdown.size(); ++r) {
    if (!(spec.rank_slowdown[r] > 0) || !(spec.rank_slowdown[r] <= 1e6))
      throw Error(fmt::format("ranks.{}.slowdown is {}; it must be a factor in (0, 1e6]", r, spec.rank_slowdown[r]));
    slowest = std::max(slowest, spec.rank_slowdown[r]);
  }
  auto too_long = [&](std::int64_t ns) { return static_cast<double>(ns) * slowest > static_cast<double>(kMaxActionNs); };
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    auto& c = spec.stages[s];
    for (auto [name, ns] : {std::pair{"F", std::optional<std::int64_t>(c.F_ns)}, {"I", c.I_ns}, {"W", c.W_ns}, {"B", c.B_ns},
                            {"FB", c.FB_ns}}) {
      if (!ns) continue;
      if (*ns <= 0) throw Error(fmt::format("stage {}: {} is {} ns; every pass must take some time", s, name, *ns));
      if (too_long(*ns))
        throw Error(fmt::format("stage {}: {} takes {:.3g} s (slowed down by up to {:g}); pipesim simulates actions up "
                                "to 1e6 s",
                                s, name, static_cast<double>(*ns) * slowest / 1e9, slowest));
    }
  }
  auto check_link = [&](const LinkCost& l, const std::string& where) {
    if (l.latency_ns < 0 || l.latency_ns > kMaxActionNs)
      throw Error(fmt::format("{}: latency {} ns is outside 0..1e6 s", where, l.latency_ns));
    double bytes = 0;
    for (auto& c : spec.stages) bytes = std::max(bytes, static_cast<double>(c.activation_bytes));
    if (l.bandwidth_bytes_per_ns < 0 ||
        (l.bandwidth_bytes_per_ns > 0 && bytes / l.bandwidth_bytes_per_ns > static_cast<double>(kMaxActionNs)))
      throw Error(fmt::format("{}: bandwidth {:g} GB/s moves a {:g}-byte activation in more than 1e6 s", where,
                              l.bandwidth_bytes_per_ns, bytes));
  };
  check_link(spec.p2p, "p2p");
  for (std::size_t i = 0; i < spec.rank_links.size(); ++i)
    check_link(spec.rank_links[i], fmt::format("link {} -> {}", i / static_cast<std::size_t>(ranks), i % static_cast<std::size_t>(ranks)));
  if (!(spec.w_memory_fraction >= 0 && spec.w_memory_fraction <= 1))
    throw Error(fmt::format("w_memory_fraction is {}; it must lie in 0..1", spec.w_memory_fraction));

  Costs out;
  out.rank_links = spec.rank_links;
  out.rank_slowdown = spec.rank_slowdown;
  out.p2p = spec.p2p;
  out.w_memory_fraction = spec.w_memory_fraction;
  out.stages.resize(spec.stages.size());
  auto partners = pair_partners(schedule.stage_to_rank, ranks);
  // Two passes: a pair's default reads its partner's backward, which must be resolved first.
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    auto& in = spec.stages[s];
    auto& c = out.stages[s];
    c.F_ns = in.F_ns;
    c.I_ns = in.I_ns;
    c.W_ns = in.W_ns;
    c.B_ns = in.B_ns.value_or(in.I_ns + in.W_ns);
    c.activation_bytes = in.activation_bytes;
    c.activation_memory = in.activation_memory;
    c.activation_memory_w = in.activation_memory_w.value_or(
        in.activation_memory -
        static_cast<std::int64_t>(std::llround((1.0 - spec.w_memory_fraction) * static_cast<double>(in.activation_memory))));
    c.pair_partner = partners[s];
  }
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    auto& c = out.stages[s];
    auto partner_b = c.pair_partner >= 0 ? out.stages[static_cast<std::size_t>(c.pair_partner)].B_ns : c.B_ns;
    c.FB_ns = spec.stages[s].FB_ns.value_or(c.F_ns + partner_b);
  }
  return out;
}

namespace {

// Sets one field of a StageCostSpec from "F" / "I" / ... ; `field` names it in errors.
void set_stage_field(StageCostSpec& c, std::string_view key, std::string_view value, std::string_view field) {
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

void apply_stage_object(StageCostSpec& c, const JsonReader& object) {
  if (!object.node().is_object()) object.fail("expected an object such as {\"F\": \"1.2ms\"}");
  for (auto& [key, value] : object.node().items()) {
    auto field = object.child(key);
    if (!value.is_string()) field.fail(fmt::format("expected a string with a unit such as \"1.2ms\", got {}", value.dump()));
    set_stage_field(c, key, value.get<std::string>(), field.path());
  }
}

int index_key(const JsonReader& table, const std::string& key, int limit) {
  int value = -1;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), value);
  if (ec != std::errc() || end != key.data() + key.size() || value < 0 || value >= limit)
    table.fail(fmt::format("'{}' is not an index in 0..{}", key, limit - 1));
  return value;
}

}  // namespace

CostSpec uniform_costs(std::string_view spec, int stages, int ranks) {
  StageCostSpec c;
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
  CostSpec costs;
  costs.stages.assign(static_cast<std::size_t>(stages), c);
  costs.rank_slowdown.assign(static_cast<std::size_t>(ranks), 1.0);
  return costs;
}

void apply_cost_file(CostSpec& costs, const JsonReader& file) {
  file.expect_object();
  file.only_keys({"comment", "source", "default", "stages", "ranks", "p2p", "w_memory_fraction"});
  int stages = static_cast<int>(costs.stages.size()), ranks = static_cast<int>(costs.rank_slowdown.size());
  if (file.has("default"))
    for (auto& stage : costs.stages) apply_stage_object(stage, file.child("default"));
  if (file.has("stages")) {
    auto table = file.child("stages");
    table.expect_object();
    for (auto& [index, object] : table.node().items())
      apply_stage_object(costs.stages[static_cast<std::size_t>(index_key(table, index, stages))], table.child(index));
  }
  if (file.has("ranks")) {
    auto table = file.child("ranks");
    table.expect_object();
    for (auto& [index, object] : table.node().items()) {
      int r = index_key(table, index, ranks);
      auto entry = table.child(index);
      entry.expect_object();
      entry.only_keys({"slowdown"});
      costs.rank_slowdown[static_cast<std::size_t>(r)] = entry.required<double>("slowdown");
    }
  }
  if (file.has("p2p")) {
    auto p2p = file.child("p2p");
    p2p.expect_object();
    p2p.only_keys({"latency", "bandwidth"});
    if (p2p.has("latency")) costs.p2p.latency_ns = parse_duration_ns(p2p.required<std::string>("latency"), p2p.child("latency").path());
    if (p2p.has("bandwidth"))
      costs.p2p.bandwidth_bytes_per_ns =
          parse_bandwidth_bytes_per_ns(p2p.required<std::string>("bandwidth"), p2p.child("bandwidth").path());
  }
  if (file.has("w_memory_fraction")) costs.w_memory_fraction = file.required<double>("w_memory_fraction");
}

CostSpec calibrated_costs(const Calibration& c, int ranks) {
  CostSpec costs;
  costs.rank_slowdown.assign(static_cast<std::size_t>(ranks), 1.0);
  costs.p2p.latency_ns = static_cast<std::int64_t>(std::llround(c.links.p2p_latency_ns));
  costs.p2p.bandwidth_bytes_per_ns = c.links.p2p_bandwidth_GBps;
  for (auto& d : c.stages) {
    StageCostSpec s;
    // A stage that only ran fused backwards still needs I and W: split B evenly (W is not observable alone).
    auto b = d.B_ns.value_or(0);
    s.B_ns = d.B_ns;
    s.F_ns = std::max<std::int64_t>(1, d.F_ns.value_or(1));
    s.I_ns = d.I_ns ? *d.I_ns : std::max<std::int64_t>(1, b / 2);
    s.W_ns = d.W_ns ? *d.W_ns : std::max<std::int64_t>(1, b - b / 2);
    s.FB_ns = d.FB_ns;  // a pair not measured on a stage costs F + B: its halves run back to back
    s.activation_bytes = c.links.activation_bytes;
    costs.stages.push_back(s);
  }
  return costs;
}

}  // namespace pipesim
