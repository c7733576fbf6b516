// Clusters and their hardware, as JSON presets (topologies/presets/*.json) or user files: GPUs per node,
// NVLink/NVSwitch inside a node, NICs and a fat tree across nodes, and per-GPU peak rates with an
// achievable-efficiency model. Validated once, where loaded; errors name the JSON path and value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "topologies/hw_profile.hpp"

namespace pipesim {

struct GpuSpec {
  std::string name;               // "H800"
  double bf16_tflops = 0;         // dense peak, e.g. 989
  double fp8_tflops = 0;          // dense peak, e.g. 1979
  double hbm_GBps = 0;            // e.g. 3350
  double hbm_GiB = 0;             // capacity, e.g. 80
  double usable_GiB = 0;          // what the device reports to CUDA (cudaDeviceProp::totalGlobalMem), e.g. 79.11
                                  // for an "80 GB" H800; 0: hbm_GiB
  double allocator_reserve = 0;   // share of usable memory the allocator holds back (fragmentation, caches)
  double capacity_bytes() const { return (usable_GiB > 0 ? usable_GiB : hbm_GiB) * 1073741824.0 * (1 - allocator_reserve); }
  int sms = 0;                    // e.g. 132
  // Achievable efficiency: a GEMM of m x n x k reaches gemm_efficiency_max of peak when large; small
  // GEMMs fall off as min(1, min(m, n, k) / gemm_efficiency_knee); memory-bound kernels reach
  // memory_efficiency of hbm_GBps.
  double gemm_efficiency_max = 0.75;
  double gemm_efficiency_knee = 1024;
  double memory_efficiency = 0.8;
};

struct ClusterSpec {
  std::string name;               // "deepseek-h800"
  std::string source;             // where the numbers come from
  int nodes = 1;
  int gpus_per_node = 8;
  GpuSpec gpu;
  double nvlink_GBps = 0;         // achievable per GPU, one direction, through the NVSwitch, e.g. 160
  double nvlink_latency_us = 0;   // e.g. 3
  int nics_per_node = 8;          // one per GPU on DGX/HGX
  double nic_GBps = 0;            // line rate per NIC, one direction, e.g. 50 (400 Gb/s)
  double nic_effective_GBps = 0;  // achievable, e.g. 40
  double ib_latency_us = 0;       // e.g. 5
  int leaf_switch_ports = 64;     // two-layer fat tree: nodes' NICs on leaves, leaves on spines
  int spine_switches = 0;         // 0: a non-blocking fat tree sized from the node count
  int comm_sms = 20;              // SMs communication kernels (EP all-to-all) take from compute, e.g. 20
  // What the GPU achieves: the preset or file named by "hw_profile" (topologies/profiles), else the
  // datasheet default built from `gpu` (default_profile). `--hw-profile` replaces it.
  HwProfile profile;
  int total_gpus() const { return nodes * gpus_per_node; }
  // Compute time factor while communication kernels hold SMs: the profile's measured factor, else
  // SMs / (SMs - comm_sms) (docs/cost-model.md §7).
  double comm_compute_slowdown() const {
    return profile.comm_compute_slowdown.value >= 1 ? profile.comm_compute_slowdown.value
                                                    : static_cast<double>(gpu.sms) / (gpu.sms - comm_sms);
  }
};

// A preset name ("deepseek-h800", "dgx-a100", "dgx-h100", "hgx-h200") or a path to a JSON file.
// Schema: the fields of ClusterSpec with "gpu" as a nested object of GpuSpec's fields, plus "comment".
ClusterSpec load_cluster(std::string_view name_or_path);
// `source` names the text in errors ("deepseek-h800.json: gpu.sms: expected a positive integer, got -3").
ClusterSpec parse_cluster(std::string_view json_text, std::string_view source);
// Ranges and cross-field rules (also for specs built in code); throws Error naming the field.
void validate_cluster(const ClusterSpec& spec, std::string_view source);
std::vector<std::string> cluster_presets();

}  // namespace pipesim
