// Operator timing at a hardware profile's rates (see op_time.hpp).
#include "sim/op_time.hpp"

#include <algorithm>

namespace pipesim {

OpTime op_time(const OpCost& op, PassKind pass, const HwProfile& hw, bool fp8) {
  return op_time(op, pass, hw, std::string_view(fp8 ? "fp8" : "bf16"));
}

OpTime op_time(const OpCost& op, PassKind pass, const HwProfile& hw, std::string_view precision) {
  OpTime t;
  double flops = op.flops[pass], bytes = op.bytes[pass];
  t.launch_ns = op.kernels[pass] * hw.launch_gap_us.value * 1e3;
  if (flops == 0 && bytes == 0) return t;
  // Memory-bound operators need no rate (and a profile fitted from fp32 runs has no bf16 table to look up).
  double tflops = 0;
  if (flops > 0 && op.fused_attention)
    tflops = pass == PassKind::F ? hw.attention_forward_tflops.value : hw.attention_backward_tflops.value;
  else if (flops > 0 && op.k > 0)
    tflops = gemm_tflops(hw, precision, std::min({op.m, op.n, op.k}),
                         pass == PassKind::F ? GemmKind::Forward : pass == PassKind::I ? GemmKind::Dgrad : GemmKind::Wgrad);
  else if (flops > 0)  // FLOPs outside a GEMM (a recomputed forward): the large-GEMM rate, bf16's under FP8 training
    tflops = gemm_tflops(hw, precision == "fp8" ? "bf16" : precision, 1e300);
  double compute = flops > 0 ? flops / (tflops * 1e3) : 0;  // 1 TFLOP/s = 1e3 FLOP per ns
  double memory = bytes / hw.memory_GBps.value;             // 1 GB/s = 1 byte/ns
  if (compute == 0) memory += op.kernels[pass] * hw.memory_kernel_us.value * 1e3;  // memory-bound kernels' fixed time
  t.compute_ns = std::max(compute, memory);
  return t;
}

CommTime topology_all_to_all(const Topology& topology, const ModelSpec& model, std::vector<int> group) {
  int max_nodes = model.moe ? model.moe->max_nodes_per_token : 0, k = model.moe ? model.moe->experts_per_token : 0;
  return [&topology, group = std::move(group), max_nodes, k](const char*, double bytes) {
    return static_cast<double>(topology.all_to_all_ns(group, bytes, max_nodes, k));
  };
}

double all_to_all_ns(const HwProfile& hw, const char* kind, int ep, double bytes, const CommTime& fallback) {
  if (auto* table = comm_table(hw, kind, ep)) return bytes / table->at(bytes);
  return fallback(kind, bytes);
}

double collective_ns(const HwProfile& hw, const char* kind, int members, double bytes, double fallback_ns) {
  auto it = hw.comm_GBps.find(kind);
  if (it == hw.comm_GBps.end() || members < 2) return fallback_ns;
  double passes = std::string_view(kind) == "all_reduce" ? 2 : 1;
  return passes * (members - 1) / members * bytes / it->second.at(bytes);
}

P2pLink p2p_link(const Topology& topology, const HwProfile& hw, int src_gpu, int dst_gpu, double bytes) {
  auto latency = static_cast<double>(topology.p2p_ns(src_gpu, dst_gpu, 0));
  auto one_gb = static_cast<double>(topology.p2p_ns(src_gpu, dst_gpu, 1e9)) - latency;
  P2pLink link{latency + hw.p2p_overhead_us.value * 1e3, one_gb > 0 ? 1e9 / one_gb : 0};
  auto it = hw.comm_GBps.find("p2p");
  if (it != hw.comm_GBps.end() && link.bytes_per_ns > 0) link.bytes_per_ns = std::min(link.bytes_per_ns, it->second.at(bytes));
  return link;
}

}  // namespace pipesim
