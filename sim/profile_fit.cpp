// Calibration of a hardware profile from an imported trace (see profile_fit.hpp).
#include "sim/profile_fit.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/numeric.hpp"

namespace pipesim {
namespace {

bool is_comm_stream(const ImportedRank& r, int stream) {
  for (auto& s : r.streams)
    if (s.stream == stream) return s.communication;
  return false;
}

ClassGroup group_of(const ImportedRun& run, const ImportedKernel& k) {
  return k.op_class >= 0 ? class_group(run.classes[static_cast<std::size_t>(k.op_class)]) : ClassGroup::Memory;
}

// Per compute kernel, the share of its time some communication kernel of its rank ran.
std::vector<double> comm_overlap(const ImportedRank& r) {
  std::vector<std::pair<std::int64_t, std::int64_t>> comm;
  for (auto& k : r.kernels)
    if (is_comm_stream(r, k.stream)) {
      if (!comm.empty() && k.start_ns <= comm.back().second) comm.back().second = std::max(comm.back().second, k.end_ns);
      else comm.emplace_back(k.start_ns, k.end_ns);
    }
  std::vector<double> out(r.kernels.size(), 0);
  for (std::size_t i = 0; i < r.kernels.size(); ++i) {
    auto& k = r.kernels[i];
    if (is_comm_stream(r, k.stream) || k.end_ns <= k.start_ns) continue;
    auto it = std::lower_bound(comm.begin(), comm.end(), k.start_ns,
                               [](const auto& c, std::int64_t t) { return c.second <= t; });
    std::int64_t covered = 0;
    for (; it != comm.end() && it->first < k.end_ns; ++it)
      covered += std::min(it->second, k.end_ns) - std::max(it->first, k.start_ns);
    out[i] = static_cast<double>(covered) / static_cast<double>(k.end_ns - k.start_ns);
  }
  return out;
}

// The transfer a phase runs: forward dispatch and the backward of combine scatter tokens ("dispatch");
// forward combine and the backward of dispatch gather them ("combine").
std::string transfer_of(const std::string& phase) {
  if (phase == "dispatch(F)" || phase == "combine(B)") return "dispatch";
  if (phase == "combine(F)" || phase == "dispatch(B)") return "combine";
  return "";
}

// Per compute kernel, its share of the GPU: time divided among the compute kernels running at once on
// different streams, so two kernels that shared the SMs count the wall time once between them.
std::vector<double> compute_share(const ImportedRank& r) {
  std::vector<std::pair<std::int64_t, std::int64_t>> bounds;  // (time, +(i+1) start / -(i+1) end)
  for (std::size_t i = 0; i < r.kernels.size(); ++i) {
    if (is_comm_stream(r, r.kernels[i].stream)) continue;
    auto id = static_cast<std::int64_t>(i) + 1;
    bounds.emplace_back(r.kernels[i].start_ns, id);
    bounds.emplace_back(r.kernels[i].end_ns, -id);
  }
  std::sort(bounds.begin(), bounds.end(), [](auto& a, auto& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; });  // starts first
  std::vector<double> share(r.kernels.size(), 0);
  std::vector<std::size_t> active;
  std::int64_t t = bounds.empty() ? 0 : bounds.front().first;
  for (auto& [time, id] : bounds) {
    if (!active.empty() && time > t)
      for (auto k : active) share[k] += static_cast<double>(time - t) / static_cast<double>(active.size());
    t = time;
    if (id > 0) active.push_back(static_cast<std::size_t>(id - 1));
    else active.erase(std::find(active.begin(), active.end(), static_cast<std::size_t>(-id - 1)));
  }
  return share;
}

}  // namespace

double measured_slowdown(const ImportedRun& run) {
  std::map<std::pair<std::size_t, std::uint32_t>, std::pair<std::vector<double>, std::vector<double>>> by_name;
  for (std::size_t ri = 0; ri < run.ranks.size(); ++ri) {
    auto& r = run.ranks[ri];
    auto overlap = comm_overlap(r);
    for (std::size_t i = 0; i < r.kernels.size(); ++i) {
      auto& k = r.kernels[i];
      double dur = static_cast<double>(k.end_ns - k.start_ns);
      if (is_comm_stream(r, k.stream) || dur < 20e3) continue;
      auto& slot = by_name[{ri, k.name}];
      if (overlap[i] >= 0.99) slot.first.push_back(dur);
      else if (overlap[i] <= 0.01) slot.second.push_back(dur);
    }
  }
  std::vector<double> ratios;
  for (auto& [_, v] : by_name)
    if (!v.first.empty() && !v.second.empty()) ratios.push_back(median(v.first) / median(v.second));
  return median(ratios);
}

double measured_launch_gap_us(const ImportedRun& run) {
  std::vector<double> gaps;
  for (auto& r : run.ranks) {
    std::map<int, std::int64_t> last_end;
    for (auto& k : r.kernels) {
      if (is_comm_stream(r, k.stream)) continue;
      auto it = last_end.find(k.stream);
      if (it != last_end.end() && k.start_ns >= it->second) gaps.push_back(static_cast<double>(k.start_ns - it->second) / 1e3);
      last_end[k.stream] = std::max(it == last_end.end() ? k.end_ns : it->second, k.end_ns);
    }
  }
  return median(gaps);
}

std::vector<PhaseMeasure> measure_phases(const ImportedRun& run, double slowdown) {
  std::vector<PhaseMeasure> out;
  std::map<std::string, std::size_t> index;
  double s = slowdown >= 1 ? slowdown : 1;
  for (auto& r : run.ranks) {
    auto overlap = comm_overlap(r);
    auto share = compute_share(r);
    std::vector<bool> ran(r.phases.size(), false);
    for (std::size_t i = 0; i < r.kernels.size(); ++i) {
      auto& k = r.kernels[i];
      if (k.phase < 0) continue;
      auto& phase = r.phases[static_cast<std::size_t>(k.phase)];
      auto [it, fresh] = index.try_emplace(phase.name, out.size());
      if (fresh) out.push_back({phase.name, 0, 0, 0, 0, 0, 0, 0});
      auto& m = out[it->second];
      double dur = is_comm_stream(r, k.stream) ? static_cast<double>(k.end_ns - k.start_ns) : share[i];
      ran[static_cast<std::size_t>(k.phase)] = true;
      if (group_of(run, k) != ClassGroup::Comm) m.compute_as_run_ns += dur;
      switch (group_of(run, k)) {
        case ClassGroup::Comm: m.comm_ns += dur; break;
        case ClassGroup::Gemm: m.gemm_ns += dur / (1 + (s - 1) * overlap[i]); break;
        case ClassGroup::Attention: m.attention_ns += dur / (1 + (s - 1) * overlap[i]); break;
        case ClassGroup::Memory: m.memory_ns += dur / (1 + (s - 1) * overlap[i]); break;
      }
    }
    for (std::size_t p = 0; p < r.phases.size(); ++p) {
      if (!ran[p]) continue;
      auto& m = out[index[r.phases[p].name]];
      ++m.instances;
      m.span_ns += static_cast<double>(r.phases[p].end_ns - r.phases[p].start_ns);
    }
  }
  for (auto& m : out)
    if (m.instances > 0)
      for (auto* v : {&m.span_ns, &m.gemm_ns, &m.attention_ns, &m.memory_ns, &m.comm_ns, &m.compute_as_run_ns})
        *v /= m.instances;
  return out;
}

void fit_compute_rates(ProfileFit& fit, const std::vector<PhaseSample>& samples, std::string_view precision,
                       double peak_GBps, const std::string& source) {
  auto& p = fit.profile;
  struct Pair {
    const PhaseMeasure* m;
    const PhaseCost* c;
  };
  std::vector<Pair> pairs;
  for (auto& sample : samples) pairs.push_back({&sample.measured, &sample.model});
  // GEMMs: rate(x) = top_kind * min(1, x / knee) over the smallest dimension x, one top per GEMM kind
  // (forward, dgrad, wgrad: the phase's pass) and one knee; the knee by search, each top in closed form,
  // least squares on the phases' relative errors.
  auto kind_of = [](const std::string& phase) {
    return phase.ends_with("(F)") ? GemmKind::Forward : phase.ends_with("(B)") ? GemmKind::Dgrad : GemmKind::Wgrad;
  };
  double best_error = INFINITY, best_knee = 0;
  std::map<GemmKind, double> best_top;
  for (double knee = 16; knee <= 65536; knee *= std::pow(2.0, 0.125)) {
    std::map<GemmKind, std::pair<double, double>> sums;  // kind -> (sum a/m, sum (a/m)^2)
    std::vector<double> a(pairs.size(), 0);
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      for (auto [flops, x] : pairs[i].c->gemms) a[i] += flops / std::min(1.0, x / knee) / 1e3;
      if (pairs[i].m->gemm_ns <= 0 || a[i] <= 0) continue;
      auto& s = sums[kind_of(pairs[i].m->name)];
      s.first += a[i] / pairs[i].m->gemm_ns;
      s.second += (a[i] / pairs[i].m->gemm_ns) * (a[i] / pairs[i].m->gemm_ns);
    }
    if (sums.empty()) break;
    double error = 0;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (pairs[i].m->gemm_ns <= 0 || a[i] <= 0) continue;
      auto& s = sums[kind_of(pairs[i].m->name)];
      error += std::pow((a[i] * s.first / s.second - pairs[i].m->gemm_ns) / pairs[i].m->gemm_ns, 2);
    }
    if (error < best_error - 1e-12) {
      best_error = error;
      best_knee = knee;
      best_top.clear();
      for (auto& [kind, s] : sums) best_top[kind] = s.second / s.first;  // top = 1 / u
    }
  }
  for (auto& [kind, top] : best_top)
    p.gemm_tflops[gemm_table_name(precision, kind)] = {
        {{1, top / best_knee}, {best_knee, top}},
        fmt::format("{}: {} GEMM kernels of the {} phases against the model's GEMM shapes; top x min(1, smallest "
                    "dim / knee), one knee for all kinds, by least squares",
                    source, precision, kind == GemmKind::Forward ? "(F)" : kind == GemmKind::Dgrad ? "(B)" : "(W)")};
  for (auto& [m, c] : pairs) {
    if (m->gemm_ns <= 0 || best_top.empty()) continue;
    double t = 0;
    for (auto [flops, x] : c->gemms) t += flops / (gemm_tflops(p, precision, x, kind_of(m->name)) * 1e3);
    fit.rows.push_back({fmt::format("gemm {}", gemm_table_name(precision, kind_of(m->name))), m->name, m->gemm_ns, t});
  }
  // Attention: forward and backward rates from the phases that run them.
  double fwd_flops = 0, fwd_ns = 0, bwd_flops = 0, bwd_ns = 0;
  for (auto& [m, c] : pairs) {
    if (c->attention_flops <= 0 || m->attention_ns <= 0) continue;
    bool forward = m->name.ends_with("(F)");
    (forward ? fwd_flops : bwd_flops) += c->attention_flops;
    (forward ? fwd_ns : bwd_ns) += m->attention_ns;
  }
  if (fwd_ns > 0)
    p.attention_forward_tflops = {fwd_flops / fwd_ns / 1e3, fmt::format("{}: attention forward kernels", source)};
  if (bwd_ns > 0)
    p.attention_backward_tflops = {bwd_flops / bwd_ns / 1e3, fmt::format("{}: attention backward kernels", source)};
  for (auto& [m, c] : pairs)
    if (c->attention_flops > 0 && m->attention_ns > 0) {
      double rate = m->name.ends_with("(F)") ? p.attention_forward_tflops.value : p.attention_backward_tflops.value;
      fit.rows.push_back({m->name.ends_with("(F)") ? "attention forward" : "attention backward", m->name,
                          m->attention_ns, c->attention_flops / (rate * 1e3)});
    }
  // Memory-bound kernels: time = bytes / bandwidth + kernels x fixed time, one bandwidth and one fixed time
  // over all phases, least squares on relative errors (a negative fixed time refits the bandwidth alone).
  {
    double sbb = 0, sbk = 0, skk = 0, sb = 0, sk = 0;  // normal equations in (1 / bandwidth, fixed)
    for (auto& [m, c] : pairs) {
      if (c->communication || m->memory_ns <= 0) continue;
      double b = c->memory_bytes / m->memory_ns, k = c->memory_kernels / m->memory_ns;
      sbb += b * b, sbk += b * k, skk += k * k, sb += b, sk += k;
    }
    double det = sbb * skk - sbk * sbk, inverse_bw = 0, fixed = 0;
    if (det > 0) {
      inverse_bw = (sb * skk - sk * sbk) / det;
      fixed = (sbb * sk - sbk * sb) / det;
    }
    if (fixed < 0 || inverse_bw <= 0) {
      fixed = 0;
      inverse_bw = sbb > 0 ? sb / sbb : 0;
    }
    // No kernel moves bytes faster than the HBM: at the peak, refit the fixed time alone.
    if (peak_GBps > 0 && inverse_bw > 0 && inverse_bw < 1 / peak_GBps) {
      inverse_bw = 1 / peak_GBps;
      double num = 0, den = 0;
      for (auto& [m, c] : pairs) {
        if (c->communication || m->memory_ns <= 0) continue;
        double k = c->memory_kernels / m->memory_ns;
        num += k * (1 - c->memory_bytes * inverse_bw / m->memory_ns);
        den += k * k;
      }
      fixed = den > 0 ? std::max(0.0, num / den) : 0;
    }
    if (inverse_bw > 0) {
      p.memory_GBps = {1 / inverse_bw, fmt::format("{}: memory-bound kernels of all phases against the model's "
                                                   "bytes and kernels (bandwidth with memory_kernel_us)", source)};
      p.memory_kernel_us = {fixed / 1e3, fmt::format("{}: fitted with memory_GBps", source)};
      for (auto& [m, c] : pairs)
        if (!c->communication && m->memory_ns > 0)
          fit.rows.push_back({"memory", m->name, m->memory_ns, c->memory_bytes * inverse_bw + c->memory_kernels * fixed});
    }
  }
}

ProfileFit fit_profile(const ImportedRun& run, const std::vector<PhaseCost>& model_phases, const HwProfile& base,
                       bool fp8, double peak_GBps, const std::string& source) {
  ProfileFit fit;
  auto& p = fit.profile;
  p = base;
  p.source = "calibrated from " + source + " (kernel times only; docs/hardware-profiles.md §3)";
  // A figure the trace cannot measure keeps the base profile's value and source.
  double slowdown = measured_slowdown(run);
  if (slowdown > 0)
    p.comm_compute_slowdown = {std::max(1.0, slowdown),
                               fmt::format("{}: median over kernel names of duration under communication / alone", source)};
  double gap = measured_launch_gap_us(run);
  bool has_gaps = false;
  for (auto& r : run.ranks)
    for (auto& s : r.streams) has_gaps |= !s.communication && s.kernels > 1;
  if (has_gaps) p.launch_gap_us = {gap, fmt::format("{}: median gap between compute-stream kernels", source)};
  auto measured = measure_phases(run, slowdown > 0 ? p.comm_compute_slowdown.value : 1.0);
  auto model_of = [&](const std::string& name) -> const PhaseCost* {
    for (auto& m : model_phases)
      if (m.name == name) return &m;
    return nullptr;
  };
  struct Pair {
    const PhaseMeasure* m;
    const PhaseCost* c;
  };
  std::vector<Pair> pairs;
  for (auto& m : measured)
    if (auto* c = model_of(m.name)) pairs.push_back({&m, c});
  if (pairs.empty())
    throw Error("calibrate: no annotated phase of the trace matches a phase of the model (attn(F), mlp(B), "
                "dispatch(F), ...)");

  std::vector<PhaseSample> samples;
  for (auto& [m, c] : pairs) samples.push_back({*m, *c});
  fit_compute_rates(fit, samples, fp8 ? "fp8" : "bf16", peak_GBps, source);
  // All-to-all: bandwidth at each message size the trace ran.
  for (const char* kind : {"dispatch", "combine"}) {
    RateTable table;
    table.source = fmt::format("{}: {} kernels against the model's bytes per GPU", source, kind);
    for (auto& [m, c] : pairs)
      if (c->communication && transfer_of(m->name) == kind && m->comm_ns > 0)
        table.points.push_back({c->comm_bytes, c->comm_bytes / m->comm_ns});
    if (table.points.empty()) continue;
    std::sort(table.points.begin(), table.points.end(), [](auto& a, auto& b) { return a.x < b.x; });
    // Equal sizes (F and B of one precision): one point at their mean rate.
    std::vector<RatePoint> merged;
    for (auto& pt : table.points) {
      if (!merged.empty() && merged.back().x == pt.x) merged.back().y = (merged.back().y + pt.y) / 2;
      else merged.push_back(pt);
    }
    table.points = merged;
    p.comm_GBps[kind] = table;
    for (auto& [m, c] : pairs)
      if (c->communication && transfer_of(m->name) == kind && m->comm_ns > 0)
        fit.rows.push_back({kind, m->name, m->comm_ns, c->comm_bytes / table.at(c->comm_bytes)});
  }
  // Stalls of the compute stream while communication runs, over the compute span.
  double stall = 0, span = 0;
  for (auto& r : run.ranks) {
    stall += static_cast<double>(r.stall_ns);
    span += static_cast<double>(r.compute_busy_ns + r.stall_ns);
  }
  p.pair_stall_fraction = {span > 0 ? stall / span : 0,
                           fmt::format("{}: compute idle while communication runs, over the compute span", source)};
  return fit;
}

PairCheck check_pair(const std::vector<PhaseCost>& phases, int layers, double slowdown, const ImportedRun* measured) {
  PairCheck out;
  out.pair = predict_pair(phases, layers, slowdown);
  std::map<std::string, std::pair<double, int>> predicted;
  for (auto& run : out.pair.phases) {
    auto& p = predicted[run.name];
    p.first += run.end_ns - run.start_ns;
    ++p.second;
  }
  std::map<std::string, double> seen;
  if (measured) {
    for (auto& m : measure_phases(*measured, 1.0)) seen[m.name] = m.span_ns;
    for (auto& r : measured->ranks) {
      if (r.kernels.empty()) continue;
      std::int64_t end = 0;
      for (auto& k : r.kernels) end = std::max(end, k.end_ns);
      out.measured_pair_ns = std::max(out.measured_pair_ns, static_cast<double>(end - r.kernels.front().start_ns));
    }
  }
  for (auto& p : phases) {
    auto it = predicted.find(p.name);
    auto m = seen.find(p.name);
    out.phases.push_back({p.name, it != predicted.end() ? it->second.first / it->second.second : p.time_ns(),
                          m != seen.end() ? m->second : NAN});
  }
  return out;
}

}  // namespace pipesim
