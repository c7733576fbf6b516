// Calibration and comparison (see calibration.hpp).
#include "traces/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

std::int64_t median(std::vector<std::int64_t> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The steps to learn from: all but the first (warm-up) when there are several.
std::size_t first_step(const RunRecord& r) { return r.steps.size() > 1 ? 1 : 0; }

std::int64_t makespan(const std::vector<Span>& spans) {
  std::int64_t end = 0;
  for (auto& s : spans) end = std::max(end, s.end_ns);
  return end;
}

}  // namespace

Calibration calibrate(const RunRecord& run) {
  Calibration c;
  c.schedule = run.schedule;
  c.ranks = run.ranks;
  c.microbatches = run.microbatches;
  c.virtual_stages = run.virtual_stages;
  c.p2p_latency_ns = run.p2p_latency_ns;
  c.p2p_bandwidth_GBps = run.p2p_bandwidth_GBps;
  c.activation_bytes = run.activation_bytes;
  c.all_to_all_GBps = run.all_to_all_GBps;
  std::vector<std::map<Op, std::vector<std::int64_t>>> durations(static_cast<std::size_t>(run.stages));
  std::vector<double> pair_ratio;
  for (std::size_t k = first_step(run); k < run.steps.size(); ++k) {
    ++c.steps_used;
    for (auto& s : run.steps[k]) {
      if (s.stream != Stream::Compute || !s.action.is_compute()) continue;
      if (s.action.stage() < 0 || s.action.stage() >= run.stages)
        throw Error(fmt::format("calibrate: {} names stage {}, but the run has {}", to_string(s.action), s.action.stage(),
                                run.stages));
      durations[static_cast<std::size_t>(s.action.stage())][s.action.op].push_back(s.end_ns - s.start_ns);
    }
  }
  for (auto& d : durations) {
    StageDurations sd{median(d[Op::F]), median(d[Op::I]), median(d[Op::W]), median(d[Op::B]), median(d[Op::OverlapFB])};
    c.stages.push_back(sd);
  }
  // Overlap slowdown: a pair's time over its halves' stand-alone times.
  std::vector<double> ratios;
  for (std::size_t k = first_step(run); k < run.steps.size(); ++k)
    for (auto& s : run.steps[k]) {
      if (s.stream != Stream::Compute || s.action.op != Op::OverlapFB) continue;
      auto& f = c.stages[static_cast<std::size_t>(s.action.pass[0].stage)];
      auto& b = c.stages[static_cast<std::size_t>(s.action.pass[1].stage)];
      auto back = b.B_ns > 0 ? b.B_ns : (b.I_ns > 0 && b.W_ns > 0 ? b.I_ns + b.W_ns : -1);
      if (f.F_ns > 0 && back > 0) ratios.push_back(static_cast<double>(s.end_ns - s.start_ns) / static_cast<double>(f.F_ns + back));
    }
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    c.overlap_slowdown = ratios[ratios.size() / 2];
  }
  return c;
}

nlohmann::ordered_json to_json(const Calibration& c) {
  nlohmann::ordered_json j;
  j["schedule"] = c.schedule;
  j["ranks"] = c.ranks;
  j["microbatches"] = c.microbatches;
  j["virtual_stages"] = c.virtual_stages;
  j["steps_used"] = c.steps_used;
  auto stages = nlohmann::ordered_json::array();
  for (auto& s : c.stages)
    stages.push_back({{"F_ns", s.F_ns}, {"I_ns", s.I_ns}, {"W_ns", s.W_ns}, {"B_ns", s.B_ns}, {"FB_ns", s.FB_ns}});
  j["stages"] = stages;
  j["p2p"] = {{"latency_ns", c.p2p_latency_ns}, {"bandwidth_GBps", c.p2p_bandwidth_GBps}};
  j["activation_bytes"] = c.activation_bytes;
  j["overlap_slowdown"] = c.overlap_slowdown;
  j["all_to_all_GBps"] = c.all_to_all_GBps;
  return j;
}

Calibration parse_calibration(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  Calibration c;
  try {
    c.schedule = j.at("schedule").get<std::string>();
    c.ranks = j.at("ranks").get<int>();
    c.microbatches = j.at("microbatches").get<int>();
    c.virtual_stages = j.value("virtual_stages", 2);
    c.steps_used = j.value("steps_used", 0);
    for (auto& s : j.at("stages"))
      c.stages.push_back({s.at("F_ns").get<std::int64_t>(), s.at("I_ns").get<std::int64_t>(), s.at("W_ns").get<std::int64_t>(),
                          s.at("B_ns").get<std::int64_t>(), s.at("FB_ns").get<std::int64_t>()});
    c.p2p_latency_ns = j.at("p2p").at("latency_ns").get<double>();
    c.p2p_bandwidth_GBps = j.at("p2p").at("bandwidth_GBps").get<double>();
    c.activation_bytes = j.at("activation_bytes").get<std::int64_t>();
    c.overlap_slowdown = j.value("overlap_slowdown", 0.0);
    c.all_to_all_GBps = j.value("all_to_all_GBps", 0.0);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: missing or mistyped field: {}", source, e.what()));
  }
  if (c.stages.empty()) throw Error(fmt::format("{}: stages: empty", source));
  return c;
}

Comparison compare(const RunRecord& measured, const RunRecord& predicted) {
  if (measured.ranks != predicted.ranks || measured.stages != predicted.stages ||
      measured.microbatches != predicted.microbatches)
    throw Error(fmt::format("compare: the runs differ in shape (ranks {} vs {}, stages {} vs {}, micro-batches {} vs {})",
                            measured.ranks, predicted.ranks, measured.stages, predicted.stages, measured.microbatches,
                            predicted.microbatches));
  Comparison out;
  // The measured step with the median makespan stands for the run.
  std::vector<std::pair<std::int64_t, std::size_t>> spans;
  for (std::size_t k = first_step(measured); k < measured.steps.size(); ++k)
    spans.emplace_back(makespan(measured.steps[k]), k);
  std::sort(spans.begin(), spans.end());
  auto& typical = measured.steps[spans[spans.size() / 2].second];
  auto& predicted_step = predicted.steps.front();
  out.measured_makespan_ns = static_cast<double>(spans[spans.size() / 2].first);
  out.predicted_makespan_ns = static_cast<double>(makespan(predicted_step));
  out.makespan_error = (out.predicted_makespan_ns - out.measured_makespan_ns) / out.measured_makespan_ns;
  auto busy = [&](const std::vector<Span>& step) {
    std::vector<double> b(static_cast<std::size_t>(measured.ranks), 0);
    for (auto& s : step)
      if (s.stream == Stream::Compute && s.action.is_compute()) b[static_cast<std::size_t>(s.rank)] += static_cast<double>(s.end_ns - s.start_ns);
    return b;
  };
  auto bm = busy(typical), bp = busy(predicted_step);
  for (int r = 0; r < measured.ranks; ++r) {
    auto i = static_cast<std::size_t>(r);
    out.ranks.push_back({r, 1 - bm[i] / out.measured_makespan_ns, 1 - bp[i] / out.predicted_makespan_ns,
                         bp[i] > 0 ? bm[i] / bp[i] : 0});
  }
  // Per action: the median measured duration over steps against the prediction.
  std::map<std::pair<int, std::string>, std::vector<std::int64_t>> measured_durations;
  for (std::size_t k = first_step(measured); k < measured.steps.size(); ++k)
    for (auto& s : measured.steps[k])
      if (s.stream == Stream::Compute && s.action.is_compute())
        measured_durations[{s.rank, to_string(s.action)}].push_back(s.end_ns - s.start_ns);
  for (auto& s : predicted_step) {
    if (s.stream != Stream::Compute || !s.action.is_compute()) continue;
    auto it = measured_durations.find({s.rank, to_string(s.action)});
    if (it == measured_durations.end() || s.end_ns == s.start_ns) continue;
    double m = static_cast<double>(median(it->second)), p = static_cast<double>(s.end_ns - s.start_ns);
    out.deviations.push_back({to_string(s.action), s.rank, m, p, m / p});
  }
  std::sort(out.deviations.begin(), out.deviations.end(), [](const auto& a, const auto& b) {
    return std::abs(std::log(a.ratio)) > std::abs(std::log(b.ratio));
  });
  if (out.deviations.size() > 10) out.deviations.resize(10);
  return out;
}

}  // namespace pipesim
