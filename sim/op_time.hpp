// Time of one operator pass on one GPU at the rates of a hardware profile (docs/hardware-profiles.md §2):
// GEMMs by precision and smallest dimension, attention by direction, memory-bound operators at the
// profile's bandwidth (an operator takes the longer of its FLOP and byte times), plus the launch gap of
// each kernel it runs; and the time of one EP all-to-all. The stage costs and the phase model both price
// operators and all-to-alls here.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "models/accounting.hpp"
#include "models/model.hpp"
#include "topologies/hw_profile.hpp"
#include "topologies/topology.hpp"

namespace pipesim {

struct OpTime {
  double compute_ns = 0;  // FLOP-bound or byte-bound time, whichever is longer
  double launch_ns = 0;   // kernels x the profile's launch gap
  double total() const { return compute_ns + launch_ns; }
};

OpTime op_time(const OpCost& op, PassKind pass, const HwProfile& hw, bool fp8);
// At the GEMM tables of `precision` ("bf16", "fp8", "fp32", ...: docs/hardware-profiles.md §2's fallbacks).
OpTime op_time(const OpCost& op, PassKind pass, const HwProfile& hw, std::string_view precision);
inline double op_ns(const OpCost& op, PassKind pass, const HwProfile& hw, bool fp8) {
  return op_time(op, pass, hw, fp8).total();
}

// EP communication time of `bytes` per GPU for "dispatch" or "combine" when the profile has no table.
using CommTime = std::function<double(const char* kind, double bytes)>;

// The model's all-to-all over `group` on the topology (node-limited routing, docs/cost-model.md §11); it
// refers to `topology`, which must outlive it.
CommTime topology_all_to_all(const Topology& topology, const ModelSpec& model, std::vector<int> group);

// One all-to-all of `bytes` per GPU: at the profile's table for the transfer and EP size when it has one
// (docs/hardware-profiles.md §2), else `fallback`.
double all_to_all_ns(const HwProfile& hw, const char* kind, int ep, double bytes, const CommTime& fallback);

// A ring collective ("reduce_scatter", "all_gather", "all_reduce") of `bytes` per GPU over `members` GPUs at
// the profile's measured bus bandwidth when it has a table for it: nccl-tests' convention, time = S/busbw x
// (m-1)/m, twice that for all-reduce (docs/hardware-profiles.md §5); else `fallback_ns` (the topology's).
double collective_ns(const HwProfile& hw, const char* kind, int members, double bytes, double fallback_ns);

// One pipeline transfer between two GPUs, as the latency and bandwidth the engine uses: the topology's route
// plus the profile's per-transfer overhead, its bandwidth capped by the profile's "p2p" table at
// `bytes` (docs/hardware-profiles.md §5).
struct P2pLink {
  double latency_ns = 0;
  double bytes_per_ns = 0;  // GB/s
};
P2pLink p2p_link(const Topology& topology, const HwProfile& hw, int src_gpu, int dst_gpu, double bytes);

}  // namespace pipesim
