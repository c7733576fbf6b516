// A hardware profile fitted from a run's operator-tagged kernels, and the run priced at a profile (see
// run_profile.hpp).
#include "sim/run_profile.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/numeric.hpp"
#include "sim/op_time.hpp"
#include "traces/calibration.hpp"

namespace pipesim {
namespace {

// One operator instance: the kernels it launched, inside one action of one step.
struct RanOp {
  int rank = 0;
  std::int64_t id = -1;            // KernelSpan::op
  std::size_t step = 0, span = 0;  // the action: run.steps[step][span]
  OpWork work;
  int kernels = 0;
  double kernel_ns = 0;  // its kernels' durations summed
};

// The tagged operators of every step, each attributed to the compute action of its rank whose span holds
// its first kernel's start (operators outside any action are left out).
std::vector<RanOp> ran_ops(const RunRecord& run, const std::string& source) {
  std::vector<RanOp> out;
  bool any = false;
  for (std::size_t k = 0; k < run.kernels.size() && k < run.steps.size(); ++k) {
    std::map<std::pair<int, std::int64_t>, std::pair<std::int64_t, RanOp>> ops;  // (rank, op) -> (first start, op)
    for (auto& kernel : run.kernels[k]) {
      if (kernel.op < 0) continue;
      any = true;
      auto [it, fresh] = ops.try_emplace({kernel.rank, kernel.op}, kernel.start_ns, RanOp{kernel.rank, kernel.op, k, 0, kernel.work, 0, 0});
      it->second.first = std::min(it->second.first, kernel.start_ns);
      ++it->second.second.kernels;
      it->second.second.kernel_ns += static_cast<double>(kernel.end_ns - kernel.start_ns);
    }
    // The rank's compute actions by start.
    std::map<int, std::vector<std::size_t>> actions;
    auto& spans = run.steps[k];
    for (std::size_t i = 0; i < spans.size(); ++i)
      if (spans[i].stream == Stream::Compute && spans[i].action.is_compute()) actions[spans[i].rank].push_back(i);
    for (auto& [rank, list] : actions)
      std::sort(list.begin(), list.end(), [&](auto a, auto b) { return spans[a].start_ns < spans[b].start_ns; });
    for (auto& [key, entry] : ops) {
      auto& list = actions[key.first];
      auto it = std::upper_bound(list.begin(), list.end(), entry.first,
                                 [&](std::int64_t t, std::size_t i) { return t < spans[i].start_ns; });
      if (it == list.begin()) continue;
      auto span = *std::prev(it);
      if (entry.first >= spans[span].end_ns) continue;
      entry.second.span = span;
      out.push_back(entry.second);
    }
  }
  if (!any)
    throw Error(fmt::format("{}: no kernel names the operator that launched it; record the run with this pipesim's "
                            "`run --timeline` (it tags every kernel with its operator, on the CPU and on GPUs)",
                            source));
  return out;
}

// The stage an operator of pass `pass` ran for in `action` (an F&B pair's forward half, or its backward).
int stage_of(const Action& action, char pass) {
  for (auto& p : action.passes())
    if ((pass == 'F') == (p.op == Op::F)) return p.stage;
  return action.stage();
}

const char* phase_suffix(char pass) { return pass == 'F' ? "(F)" : pass == 'I' ? "(B)" : "(W)"; }

}  // namespace

std::string run_precision(const RunRecord& run) {
  auto text = [&](const char* key) {
    return run.workload.is_object() && run.workload.contains(key) && run.workload[key].is_string()
               ? run.workload[key].get<std::string>()
               : std::string();
  };
  auto math = text("gemm_math");  // tensor-core math on FP32 storage (run --gemm-math)
  if (!math.empty() && math != "exact") {
    if (math != "tf32" && math != "bf16" && math != "fp8")
      throw Error(fmt::format("the run's workload.gemm_math '{}' is not exact, tf32, bf16 or fp8", math));
    return math;
  }
  auto precision = text("precision");
  if (precision.empty()) return "fp32";
  if (precision != "fp32" && precision != "fp64")
    throw Error(fmt::format("the run's workload.precision '{}' is not fp32 or fp64", precision));
  return precision;
}

namespace {

struct FitInput {
  std::map<std::string, PhaseSample> phases;
  std::map<std::string, std::map<double, double>> gemms;  // phase -> smallest dimension -> FLOPs
  std::vector<double> gaps_us;
};

// One run's operators after its first step into `in`: a phase per (stage, pass), names prefixed by `prefix`;
// and the idle between consecutive tagged kernels of one stream inside one action.
void add_run(FitInput& in, const RunRecord& run, const std::string& prefix, const std::string& source) {
  auto ops = ran_ops(run, source);
  auto name_of = [&](const RanOp& op) {
    auto& action = run.steps[op.step][op.span].action;
    return fmt::format("{}stage {} {}", prefix, stage_of(action, op.work.pass), phase_suffix(op.work.pass));
  };
  // The halves of an overlapped F&B pair may run at once on their stages' streams and share the GPU, so
  // their kernels' times are not an idle GPU's: a phase is measured on actions that ran alone when it has any.
  std::set<std::string> alone;
  for (auto& op : ops)
    if (op.step >= first_calibrated_step(run) && run.steps[op.step][op.span].action.op != Op::OverlapFB) alone.insert(name_of(op));
  for (auto& op : ops) {
    if (op.step < first_calibrated_step(run)) continue;
    auto name = name_of(op);
    if (run.steps[op.step][op.span].action.op == Op::OverlapFB && alone.count(name)) continue;
    if (op.work.kind == OpKind::Comm) continue;  // priced at the run's all-to-all rate, not fitted
    auto& sample = in.phases[name];
    sample.measured.name = sample.model.name = name;
    sample.measured.instances = 1;  // sums over instances: every figure is a ratio of two of them
    sample.measured.span_ns += op.kernel_ns;
    sample.measured.compute_as_run_ns += op.kernel_ns;
    sample.model.kernels += op.kernels;
    switch (op.work.kind) {
      case OpKind::Gemm:
        sample.measured.gemm_ns += op.kernel_ns;
        in.gemms[name][op.work.min_dim] += op.work.flops;
        break;
      case OpKind::Attention:
        sample.measured.attention_ns += op.kernel_ns;
        sample.model.attention_flops += op.work.flops;
        break;
      case OpKind::Memory:
      case OpKind::Comm:
      case OpKind::None:
        sample.measured.memory_ns += op.kernel_ns;
        sample.model.memory_bytes += op.work.bytes;
        sample.model.memory_kernels += op.kernels;
        break;
    }
  }
  for (std::size_t k = first_calibrated_step(run); k < run.kernels.size() && k < run.steps.size(); ++k) {
    std::map<std::pair<int, std::uint32_t>, std::vector<const KernelSpan*>> streams;
    for (auto& kernel : run.kernels[k])
      if (kernel.op >= 0) streams[{kernel.rank, kernel.stream}].push_back(&kernel);
    std::map<std::pair<int, std::int64_t>, std::size_t> action_of;  // (rank, op) -> span
    for (auto& op : ops)
      if (op.step == k) action_of[{op.rank, op.id}] = op.span;
    for (auto& [key, list] : streams) {
      std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->start_ns < b->start_ns; });
      for (std::size_t i = 1; i < list.size(); ++i) {
        auto a = action_of.find({list[i - 1]->rank, list[i - 1]->op}), b = action_of.find({list[i]->rank, list[i]->op});
        auto gap = list[i]->start_ns - list[i - 1]->end_ns;
        if (a != action_of.end() && b != action_of.end() && a->second == b->second && gap >= 0)
          in.gaps_us.push_back(static_cast<double>(gap) / 1e3);
      }
    }
  }
}

}  // namespace

ProfileFit fit_run_profile(const std::vector<SourcedRun>& runs, const HwProfile& base, double peak_GBps) {
  if (runs.empty()) throw Error("calibrate: no run to fit a hardware profile from", Error::Kind::Internal);
  std::string source, precision = run_precision(*runs.front().run);
  FitInput in;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    auto& r = runs[i];
    if (run_precision(*r.run) != precision)
      throw Error(fmt::format("{}: its GEMMs ran in {}, {}'s in {}; fit one profile per precision", r.source,
                              run_precision(*r.run), runs.front().source, precision));
    source += (i ? ", " : "") + r.source;
    add_run(in, *r.run, runs.size() > 1 ? fmt::format("run {} ", i + 1) : std::string(), r.source);
  }
  ProfileFit fit;
  fit.profile = base;
  fit.profile.source = "calibrated from " + source + " (operator-tagged kernels only; docs/gpu-runtime.md §10)";
  std::vector<PhaseSample> samples;
  for (auto& [name, sample] : in.phases) {
    for (auto [x, flops] : in.gemms[name])
      if (flops > 0) sample.model.gemms.emplace_back(flops, x);
    samples.push_back(std::move(sample));
  }
  if (samples.empty())
    throw Error(fmt::format("{}: no tagged operator ran inside an action after the first step", source));
  fit_compute_rates(fit, samples, precision, peak_GBps, source);
  if (!in.gaps_us.empty())
    fit.profile.launch_gap_us = {median(in.gaps_us), fmt::format("{}: median idle between consecutive tagged kernels "
                                                                 "of a stream", source)};
  return fit;
}

ProfileFit fit_run_profile(const RunRecord& run, const HwProfile& base, double peak_GBps, const std::string& source) {
  return fit_run_profile(std::vector<SourcedRun>{{&run, source}}, base, peak_GBps);
}

double op_price_ns(const OpWork& work, int kernels, const HwProfile& profile, const std::string& precision) {
  OpCost cost;
  auto pass = work.pass == 'F' ? PassKind::F : work.pass == 'I' ? PassKind::I : PassKind::W;
  cost.flops[pass] = work.flops;
  cost.bytes[pass] = work.bytes;
  cost.kernels[pass] = kernels;
  if (work.kind == OpKind::Gemm) cost.m = cost.n = cost.k = work.min_dim;  // op_time reads only their smallest
  cost.fused_attention = work.kind == OpKind::Attention;
  return op_time(cost, pass, profile, precision).total();
}

namespace {

// gemm_tflops() would fall back to bf16's table without a word: pricing needs the run's own.
void require_table(const HwProfile& profile, const std::string& precision) {
  if (!profile.gemm_tflops.count(precision))
    throw Error(fmt::format("hardware profile {} has no {} GEMM table, the precision the run's GEMMs ran in; fit one "
                            "from the run (calibrate --hw-profile-out) or from a run of that precision",
                            profile.name.empty() ? "(unnamed)" : profile.name, precision));
}

// An operator's price: compute at the profile's rates; an exchange at the rate the run's own all-to-all
// microbenchmark measured (bytes sent to the other EP ranks over it), the way the calibration prices links.
double price(const RanOp& op, const RunRecord& run, const HwProfile& profile, const std::string& precision) {
  if (op.work.kind != OpKind::Comm) return op_price_ns(op.work, op.kernels, profile, precision);
  if (!(run.links.all_to_all_GBps > 0))
    throw Error("the run's operators include expert all-to-alls, but its microbenchmark has no all-to-all rate "
                "(microbenchmark.all_to_all_GBps) to price them");
  return op.work.bytes / run.links.all_to_all_GBps;  // GB/s = bytes per ns
}

}  // namespace

PricedRun price_run(const RunRecord& run, const HwProfile& profile) {
  auto ops = ran_ops(run, "the run");
  auto precision = run_precision(run);
  require_table(profile, precision);
  for (std::size_t k = 0; k < run.steps.size(); ++k)
    if (k >= run.kernels.size() || run.kernels[k].empty())
      throw Error(fmt::format("the run's step {} recorded no kernels, so its actions cannot be priced", k));
  struct Priced {
    double price = 0, kernels = 0;
    double by_kind[4] = {0, 0, 0, 0};  // GEMM, attention, memory-bound, communication
  };
  auto kind_index = [](OpKind k) {
    return k == OpKind::Gemm ? 0 : k == OpKind::Attention ? 1 : k == OpKind::Comm ? 3 : 2;
  };
  std::map<std::pair<std::size_t, std::size_t>, Priced> per_action;
  for (auto& op : ops) {
    auto& a = per_action[{op.step, op.span}];
    a.price += price(op, run, profile, precision);
    a.kernels += op.kernel_ns;
    a.by_kind[kind_index(op.work.kind)] += op.kernel_ns;
  }
  struct Lists {
    std::vector<double> measured, priced, share, by_kind[4];
  };
  std::map<std::pair<int, Op>, Lists> lists;
  PricedRun out{run, {}};
  for (std::size_t k = 0; k < run.steps.size(); ++k)
    for (std::size_t i = 0; i < run.steps[k].size(); ++i) {
      auto& span = run.steps[k][i];
      if (span.stream != Stream::Compute || !span.action.is_compute()) continue;
      auto it = per_action.find({k, i});
      Priced none;
      auto& a = it == per_action.end() ? none : it->second;
      auto& priced = out.run.steps[k][i];
      priced.end_ns = priced.start_ns + static_cast<std::int64_t>(a.price + 0.5);
      if (k < first_calibrated_step(run)) continue;
      auto& l = lists[{span.action.stage(), span.action.op}];
      double measured = static_cast<double>(span.end_ns - span.start_ns);
      auto share = [&](double ns) { return measured > 0 ? ns / measured : 0; };
      l.measured.push_back(measured);
      l.priced.push_back(a.price);
      l.share.push_back(share(a.kernels));
      for (int j = 0; j < 4; ++j) l.by_kind[j].push_back(share(a.by_kind[j]));
    }
  for (auto& [key, l] : lists)
    out.checks.push_back({key.first, key.second, median(l.measured), median(l.priced), median(l.share),
                          median(l.by_kind[0]), median(l.by_kind[1]), median(l.by_kind[2]), median(l.by_kind[3])});
  return out;
}

}  // namespace pipesim
