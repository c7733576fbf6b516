// Phases of a layer and the overlapped pair as a two-stream fluid model (see phases.hpp).
#include "sim/phases.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "common/error.hpp"
#include "sim/model_costs.hpp"
#include "sim/op_time.hpp"

namespace pipesim {
namespace {

// DeepSeek's chunk runs everything before the dispatch (attention, the MLP norm, the router) as "attn".
bool before_dispatch(const OpCost& op, bool moe) {
  if (op.part == Part::Attention || op.part == Part::Router) return true;
  return moe && op.part == Part::Mlp;
}

const char* suffix(PassKind pass) { return pass == PassKind::F ? "(F)" : pass == PassKind::I ? "(B)" : "(W)"; }

}  // namespace

std::vector<PhaseCost> layer_phases(const LayerCost& layer, const Shape& shape, const HwProfile& hw, bool fp8,
                                    const CommTime& fallback) {
  bool moe = layer.kind == LayerKind::Moe || layer.dispatch_bytes > 0;
  std::map<std::string, PhaseCost> by_name;
  std::vector<std::string> order;
  auto phase = [&](const std::string& name) -> PhaseCost& {
    auto [it, fresh] = by_name.try_emplace(name);
    if (fresh) {
      it->second.name = name;
      order.push_back(name);
    }
    return it->second;
  };
  for (auto pass : kPassKinds)
    for (const char* block : {"attn", "mlp"}) phase(std::string(block) + suffix(pass));
  for (auto& op : layer.ops) {
    for (auto pass : kPassKinds) {
      auto& p = phase(std::string(before_dispatch(op, moe) ? "attn" : "mlp") + suffix(pass));
      auto t = op_time(op, pass, hw, fp8);
      p.kernels += op.kernels[pass];
      p.launch_ns += t.launch_ns;
      if (op.fused_attention) {
        p.attention_flops += op.flops[pass];
        p.attention_ns += t.compute_ns;
      } else if (op.k > 0 && op.flops[pass] > 0) {
        p.gemms.emplace_back(op.flops[pass], std::min({op.m, op.n, op.k}));
        p.gemm_ns += t.compute_ns;
      } else if (op.flops[pass] > 0) {
        p.gemm_ns += t.compute_ns;  // a recomputed forward outside GEMM shapes
      } else {
        p.memory_bytes += op.bytes[pass];
        p.memory_kernels += op.kernels[pass];
        p.memory_ns += t.compute_ns;
      }
    }
  }
  std::vector<PhaseCost> out;
  for (auto& name : order) out.push_back(by_name[name]);
  if (!moe) return out;
  auto comm = [&](const char* name, const char* kind, double bytes) {
    PhaseCost p;
    p.name = name;
    p.communication = true;
    p.comm_bytes = shape.ep > 1 ? bytes : 0;  // one EP rank: every expert is local, nothing moves
    p.comm_ns = p.comm_bytes == 0 ? 0 : all_to_all_ns(hw, kind, shape.ep, bytes, fallback);
    out.push_back(p);
  };
  // The backward of a combine scatters gradients along the dispatch routes, the backward of a dispatch
  // gathers them as a combine does, both in BF16 (the combine's bytes): each is priced as the transfer it
  // is (docs/hardware-profiles.md §3).
  comm("dispatch(F)", "dispatch", layer.dispatch_bytes);
  comm("combine(F)", "combine", layer.combine_bytes);
  comm("dispatch(B)", "combine", layer.combine_bytes);
  comm("combine(B)", "dispatch", layer.combine_bytes);
  return out;
}

std::vector<PhaseCost> moe_layer_phases(const ModelSpec& model, const Plan& plan, const HwProfile& hw,
                                        const CommTime& fallback) {
  auto shape = plan_shape(plan);
  for (auto& layer : model_layers(model, shape))
    if (layer.kind == LayerKind::Moe) return layer_phases(layer, shape, hw, plan.precision == Precision::FP8, fallback);
  throw Error(fmt::format("model '{}' has no MoE layer; the phase view follows DeepSeek's MoE chunk", model.name));
}

PairPrediction predict_pair(const std::vector<PhaseCost>& phases, int layers, double slowdown) {
  if (layers < 1) throw Error(fmt::format("pair: {} layers; need at least one", layers));
  std::vector<std::vector<PhaseCost>> chunk(static_cast<std::size_t>(layers), phases);
  for (auto& name : {"attn(F)", "mlp(F)", "attn(B)", "mlp(B)", "attn(W)", "mlp(W)", "dispatch(F)", "dispatch(B)",
                     "combine(F)", "combine(B)"})
    if (std::none_of(phases.begin(), phases.end(), [&](const PhaseCost& p) { return p.name == name; }))
      throw Error(fmt::format("pair: the layer has no phase {} (an overlapped pair needs a MoE layer)", name));
  return predict_pair(chunk, chunk, slowdown);
}

PairPrediction predict_pair(const std::vector<std::vector<PhaseCost>>& forward,
                            const std::vector<std::vector<PhaseCost>>& backward, double slowdown) {
  if (!(slowdown >= 1)) throw Error(fmt::format("pair: compute slowdown {} must be at least 1", slowdown));
  int layers = static_cast<int>(std::max(forward.size(), backward.size()));
  auto cost = [&](const std::string& name, int layer) {
    bool backward_half = name.ends_with("(B)") || name.ends_with("(W)");
    auto& chunk = backward_half ? backward : forward;
    if (static_cast<std::size_t>(layer) >= chunk.size()) return 0.0;
    for (auto& p : chunk[static_cast<std::size_t>(layer)])
      if (p.name == name) return p.time_ns();
    return 0.0;
  };
  // Streams in DeepSeek's issue order; each entry (phase, layer, the phase it waits for, that one's layer).
  struct Step {
    std::string name;
    int layer;
    std::string after;
    int after_layer;
  };
  std::vector<Step> compute, comm;
  for (int l = 0; l < layers; ++l) {
    compute.push_back({"attn(F)", l, l > 0 ? "combine(F)" : "", l - 1});
    compute.push_back({"mlp(B)", l, "combine(B)", l});
    compute.push_back({"mlp(W)", l, "", 0});
    compute.push_back({"mlp(F)", l, "dispatch(F)", l});
    compute.push_back({"attn(B)", l, "dispatch(B)", l});
    compute.push_back({"attn(W)", l, "", 0});
    comm.push_back({"combine(B)", l, l > 0 ? "attn(B)" : "", l - 1});
    comm.push_back({"dispatch(F)", l, "attn(F)", l});
    comm.push_back({"dispatch(B)", l, "mlp(B)", l});
    comm.push_back({"combine(F)", l, "mlp(F)", l});
  }
  std::map<std::pair<std::string, int>, double> done;  // phase -> end time
  PairPrediction out;
  out.slowdown = slowdown;
  std::size_t ci = 0, mi = 0;
  double t = 0, work_left = 0, comm_end = 0, compute_start = 0, comm_start = 0;
  bool computing = false, communicating = false;
  auto ready = [&](const Step& s) { return s.after.empty() || done.count({s.after, s.after_layer}); };
  while (ci < compute.size() || mi < comm.size() || computing || communicating) {
    if (!computing && ci < compute.size() && ready(compute[ci])) {
      computing = true;
      work_left = cost(compute[ci].name, compute[ci].layer);
      compute_start = t;
    }
    if (!communicating && mi < comm.size() && ready(comm[mi])) {
      communicating = true;
      comm_start = t;
      comm_end = t + cost(comm[mi].name, comm[mi].layer);
    }
    if (!computing && !communicating) throw Error("pair: the phases wait on each other", Error::Kind::Internal);
    double rate = communicating ? 1.0 / slowdown : 1.0;
    double compute_end = computing ? t + work_left / rate : std::numeric_limits<double>::infinity();
    double next = std::min(compute_end, communicating ? comm_end : std::numeric_limits<double>::infinity());
    if (computing) work_left -= (next - t) * rate;
    else if (ci < compute.size()) out.compute_stall_ns += next - t;
    t = next;
    if (computing && t >= compute_end) {
      auto& s = compute[ci++];
      done[{s.name, s.layer}] = t;
      out.phases.push_back({s.name, s.layer, compute_start, t});
      computing = false;
    }
    if (communicating && t >= comm_end) {
      auto& s = comm[mi++];
      done[{s.name, s.layer}] = t;
      out.phases.push_back({s.name, s.layer, comm_start, t});
      communicating = false;
    }
  }
  out.makespan_ns = t;
  std::stable_sort(out.phases.begin(), out.phases.end(),
                   [](const PhaseRun& a, const PhaseRun& b) { return a.start_ns < b.start_ns; });
  return out;
}

}  // namespace pipesim
