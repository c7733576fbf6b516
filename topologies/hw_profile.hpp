// Hardware profiles: what one GPU type achieves, as measured rather than as specified. GEMM throughput by
// precision and smallest GEMM dimension (a table, interpolated), attention forward/backward throughput,
// memory-bound bandwidth, the gap between kernels, communication bandwidth by collective and message
// size, the compute slowdown while communication kernels hold SMs, and the stall share of an overlapped
// F&B pair. Every figure carries its source (a trace and its hash, a published benchmark, or "default").
// Presets live in topologies/profiles/; `pipesim calibrate --trace` writes new ones. docs/hardware-profiles.md.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pipesim {

struct GpuSpec;

struct RatePoint {
  double x = 0;  // smallest GEMM dimension, or message bytes per GPU
  double y = 0;  // TFLOP/s, or GB/s
};

// Piecewise linear in x through the points (sorted by x), constant beyond the ends.
struct RateTable {
  std::vector<RatePoint> points;
  std::string source;
  double at(double x) const;
  bool empty() const { return points.empty(); }
};

struct Figure {
  double value = 0;
  std::string source;
};

struct HwProfile {
  std::string name;                 // "h800"
  std::string gpu;                  // "H800"
  std::string source;               // where the profile as a whole comes from
  // By smallest GEMM dimension, per precision ("fp8", "bf16") and optionally per GEMM of the backward
  // ("fp8.dgrad": the input gradient, "fp8.wgrad": the weight gradient, whose operands are transposed).
  std::map<std::string, RateTable, std::less<>> gemm_tflops;
  Figure attention_forward_tflops, attention_backward_tflops;  // causal FLOPs as pipesim counts them
  Figure memory_GBps;               // memory-bound kernels, bytes the model counts per ns
  Figure memory_kernel_us;          // plus this fixed time per memory-bound kernel (small kernels never reach the bandwidth)
  Figure launch_gap_us;             // idle between consecutive kernels of one stream
  // By bytes per GPU: "dispatch", "combine" (algorithm bandwidth; "dispatch.ep16" at one EP size);
  // "reduce_scatter", "all_gather", "all_reduce" (nccl-tests bus bandwidth); "p2p" (one pipeline
  // transfer's bandwidth, capping the topology's).
  std::map<std::string, RateTable, std::less<>> comm_GBps;
  Figure p2p_overhead_us;           // per pipeline transfer, beyond the topology's link latency (NCCL launch, handshake)
  Figure comm_compute_slowdown;     // compute time x this while communication kernels hold SMs (>= 1)
  Figure pair_stall_fraction;       // share of an overlapped pair the compute stream waits on communication
};

// A profile equivalent to a GPU's datasheet peaks and pipesim's generic efficiency model (gemm_efficiency_max
// of peak at and above gemm_efficiency_knee, linearly less below; memory at memory_efficiency of HBM).
HwProfile default_profile(const GpuSpec& gpu);

// GEMM throughput (TFLOP/s) at a precision and pass: "fp8.wgrad", else "fp8", else "bf16".
enum class GemmKind { Forward, Dgrad, Wgrad };
double gemm_tflops(const HwProfile& profile, std::string_view precision, double smallest_dim,
                   GemmKind kind = GemmKind::Forward);
std::string gemm_table_name(std::string_view precision, GemmKind kind);

// The all-to-all table for `kind` ("dispatch", "combine") at EP size `ep`: "<kind>.ep<ep>" when the profile
// has it, else "<kind>"; nullptr without either (the topology model prices it then).
const RateTable* comm_table(const HwProfile& profile, std::string_view kind, int ep);

// A preset name (topologies/profiles) or a file. Errors name the JSON path and value.
HwProfile load_hw_profile(std::string_view name_or_path);
HwProfile parse_hw_profile(std::string_view json_text, std::string_view source);
nlohmann::ordered_json to_json(const HwProfile& profile);
std::vector<std::string> hw_profile_presets();

}  // namespace pipesim
