// Calibration and comparison (see calibration.hpp).
#include "traces/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

std::optional<std::int64_t> median(std::vector<std::int64_t> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::int64_t makespan(const std::vector<Span>& spans) {
  std::int64_t end = 0;
  for (auto& s : spans) end = std::max(end, s.end_ns);
  return end;
}

}  // namespace

std::size_t first_calibrated_step(const RunRecord& run) { return run.steps.size() > 1 ? 1 : 0; }

Calibration calibrate(const RunRecord& run) {
  Calibration c;
  c.schedule = run.schedule;
  c.links = run.links;
  auto stages = run.schedule.stages;
  std::vector<std::map<Op, std::vector<std::int64_t>>> durations(static_cast<std::size_t>(stages));
  std::vector<double> pair_ratio;
  for (std::size_t k = first_calibrated_step(run); k < run.steps.size(); ++k) {
    ++c.steps_used;
    for (auto& s : run.steps[k]) {
      if (s.stream != Stream::Compute || !s.action.is_compute()) continue;
      for (auto& pass : s.action.passes())
        if (pass.stage < 0 || pass.stage >= stages)
          throw Error(fmt::format("calibrate: {} names stage {}, but the run has {}", to_string(s.action), pass.stage,
                                  stages));
      durations[static_cast<std::size_t>(s.action.stage())][s.action.op].push_back(s.end_ns - s.start_ns);
    }
  }
  for (auto& d : durations) {
    StageDurations sd{median(d[Op::F]), median(d[Op::I]), median(d[Op::W]), median(d[Op::B]), median(d[Op::OverlapFB])};
    c.stages.push_back(sd);
  }
  // Overlap slowdown: a pair's time over its halves' stand-alone times.
  std::vector<double> ratios;
  for (std::size_t k = first_calibrated_step(run); k < run.steps.size(); ++k)
    for (auto& s : run.steps[k]) {
      if (s.stream != Stream::Compute || s.action.op != Op::OverlapFB) continue;
      auto& f = c.stages[static_cast<std::size_t>(s.action.pass[0].stage)];
      auto& b = c.stages[static_cast<std::size_t>(s.action.pass[1].stage)];
      auto back = b.B_ns ? b.B_ns : (b.I_ns && b.W_ns ? std::optional(*b.I_ns + *b.W_ns) : std::nullopt);
      if (f.F_ns && back && *f.F_ns + *back > 0)
        ratios.push_back(static_cast<double>(s.end_ns - s.start_ns) / static_cast<double>(*f.F_ns + *back));
    }
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    c.overlap_slowdown = ratios[ratios.size() / 2];
  }
  return c;
}

nlohmann::ordered_json to_json(const Calibration& c) {
  nlohmann::ordered_json j = to_json(c.schedule);
  j["steps_used"] = c.steps_used;
  auto stages = nlohmann::ordered_json::array();
  auto value = [](const std::optional<std::int64_t>& ns) { return ns ? nlohmann::ordered_json(*ns) : nlohmann::ordered_json(); };
  for (auto& s : c.stages)
    stages.push_back({{"F_ns", value(s.F_ns)}, {"I_ns", value(s.I_ns)}, {"W_ns", value(s.W_ns)}, {"B_ns", value(s.B_ns)},
                      {"FB_ns", value(s.FB_ns)}});
  j["durations"] = stages;
  j["p2p"] = {{"latency_ns", c.links.p2p_latency_ns}, {"bandwidth_GBps", c.links.p2p_bandwidth_GBps}};
  j["activation_bytes"] = c.links.activation_bytes;
  j["overlap_slowdown"] = c.overlap_slowdown;
  j["all_to_all_GBps"] = c.links.all_to_all_GBps;
  return j;
}

Calibration parse_calibration(const std::string& text, const std::string& source) {
  auto document = parse_json(text, source);
  JsonReader j(document, source);
  j.expect_object();
  Calibration c;
  c.schedule = schedule_from_json(j);
  validate(c.schedule);
  c.steps_used = j.optional<int>("steps_used", 0);
  auto duration = [](const JsonReader& stage, const char* key) -> std::optional<std::int64_t> {
    if (!stage.has(key) || stage.child(key).node().is_null()) return std::nullopt;
    auto ns = stage.required<std::int64_t>(key);
    if (ns <= 0) stage.child(key).fail(fmt::format("{} ns; a measured duration must be positive", ns));
    return ns;
  };
  for (auto& stage : j.child("durations").elements()) {
    stage.expect_object();
    stage.only_keys({"F_ns", "I_ns", "W_ns", "B_ns", "FB_ns"});
    c.stages.push_back({duration(stage, "F_ns"), duration(stage, "I_ns"), duration(stage, "W_ns"),
                        duration(stage, "B_ns"), duration(stage, "FB_ns")});
  }
  if (c.stages.size() != static_cast<std::size_t>(c.schedule.stages))
    j.child("durations").fail(fmt::format("{} entries for the {} stages of the schedule", c.stages.size(), c.schedule.stages));
  auto p2p = j.child("p2p");
  c.links.p2p_latency_ns = p2p.required<double>("latency_ns");
  c.links.p2p_bandwidth_GBps = p2p.required<double>("bandwidth_GBps");
  c.links.activation_bytes = j.required<std::int64_t>("activation_bytes");
  c.overlap_slowdown = j.optional<double>("overlap_slowdown", 0.0);
  c.links.all_to_all_GBps = j.optional<double>("all_to_all_GBps", 0.0);
  return c;
}

Comparison compare(const RunRecord& measured, const RunRecord& predicted) {
  auto& ms = measured.schedule;
  auto& ps = predicted.schedule;
  if (ms.ranks != ps.ranks || ms.stages != ps.stages || ms.microbatches != ps.microbatches)
    throw Error(fmt::format("compare: the runs differ in shape (ranks {} vs {}, stages {} vs {}, micro-batches {} vs {})",
                            ms.ranks, ps.ranks, ms.stages, ps.stages, ms.microbatches, ps.microbatches));
  Comparison out;
  // The measured step with the median makespan stands for the run.
  std::vector<std::pair<std::int64_t, std::size_t>> spans;
  for (std::size_t k = first_calibrated_step(measured); k < measured.steps.size(); ++k)
    spans.emplace_back(makespan(measured.steps[k]), k);
  std::sort(spans.begin(), spans.end());
  auto& typical = measured.steps[spans[spans.size() / 2].second];
  auto& predicted_step = predicted.steps.front();
  out.measured_makespan_ns = static_cast<double>(spans[spans.size() / 2].first);
  out.predicted_makespan_ns = static_cast<double>(makespan(predicted_step));
  out.makespan_error = (out.predicted_makespan_ns - out.measured_makespan_ns) / out.measured_makespan_ns;
  auto busy = [&](const std::vector<Span>& step) {
    std::vector<double> b(static_cast<std::size_t>(ms.ranks), 0);
    for (auto& s : step)
      if (s.stream == Stream::Compute && s.action.is_compute()) b[static_cast<std::size_t>(s.rank)] += static_cast<double>(s.end_ns - s.start_ns);
    return b;
  };
  auto bm = busy(typical), bp = busy(predicted_step);
  for (int r = 0; r < ms.ranks; ++r) {
    auto i = static_cast<std::size_t>(r);
    out.ranks.push_back({r, 1 - bm[i] / out.measured_makespan_ns, 1 - bp[i] / out.predicted_makespan_ns,
                         bp[i] > 0 ? bm[i] / bp[i] : 0});
  }
  std::vector<double> ratios;
  for (auto& r : out.ranks) ratios.push_back(r.busy_ratio);
  std::sort(ratios.begin(), ratios.end());
  out.median_busy_ratio = ratios.empty() ? 0 : ratios[(ratios.size() - 1) / 2];
  for (auto& r : out.ranks)
    if (out.ranks.size() > 1 && r.busy_ratio > 1.1 * out.median_busy_ratio &&
        (out.straggler < 0 || r.busy_ratio > out.ranks[static_cast<std::size_t>(out.straggler)].busy_ratio))
      out.straggler = r.rank;
  // Per action: the median measured duration over steps against the prediction.
  std::map<std::pair<int, std::string>, std::vector<std::int64_t>> measured_durations;
  for (std::size_t k = first_calibrated_step(measured); k < measured.steps.size(); ++k)
    for (auto& s : measured.steps[k])
      if (s.stream == Stream::Compute && s.action.is_compute())
        measured_durations[{s.rank, to_string(s.action)}].push_back(s.end_ns - s.start_ns);
  for (auto& s : predicted_step) {
    if (s.stream != Stream::Compute || !s.action.is_compute()) continue;
    auto it = measured_durations.find({s.rank, to_string(s.action)});
    if (it == measured_durations.end() || s.end_ns == s.start_ns) continue;
    double m = static_cast<double>(*median(it->second)), p = static_cast<double>(s.end_ns - s.start_ns);
    out.deviations.push_back({to_string(s.action), s.rank, m, p, m / p});
  }
  std::sort(out.deviations.begin(), out.deviations.end(), [](const auto& a, const auto& b) {
    return std::abs(std::log(a.ratio)) > std::abs(std::log(b.ratio));
  });
  if (out.deviations.size() > 10) out.deviations.resize(10);
  return out;
}

}  // namespace pipesim
