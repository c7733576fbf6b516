// A cluster as a Boost.Graph of devices and links (GPUs, one NVSwitch per node, NICs, leaf and spine
// switches), with routes between GPUs and the cost of communication over it. Concurrent flows that share
// a link share its bandwidth: a set of flows takes as long as its most loaded link (bytes / bandwidth)
// plus the route's latency. Collectives use the standard bus-bandwidth formulas (nccl-tests), hierarchical
// across nodes; the MoE all-to-all follows DeepSeek-V3: node-limited routing, IB to the same-index GPU of
// the target node, then NVLink forwarding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "topologies/cluster.hpp"

namespace pipesim {

struct Flow {
  int src_gpu = 0, dst_gpu = 0;
  double bytes = 0;
};

class Topology {
 public:
  explicit Topology(const ClusterSpec& spec);
  ~Topology();
  Topology(Topology&&) noexcept;
  Topology& operator=(Topology&&) noexcept;

  const ClusterSpec& spec() const;
  int node_of(int gpu) const { return gpu / spec().gpus_per_node; }

  // Link ids along the route src -> dst (empty for src == dst), and each link's bandwidth in GB/s.
  std::vector<int> route(int src_gpu, int dst_gpu) const;
  double link_GBps(int link) const;
  int links() const;
  std::string link_name(int link) const;  // "n0.gpu3->n0.nvswitch", "n0.nic3->rail3.leaf0", ...
  // Hops on a shortest path, by breadth-first search over the graph: the slow reference that the
  // structural routes are checked against.
  int shortest_hops(int src_gpu, int dst_gpu) const;

  // Time for flows that run at the same time, sharing links: max over links of load / bandwidth, plus
  // the largest route latency. Nanoseconds. Linear in bytes: a zero-byte flow still pays its latency, so
  // p2p_ns(a, b, 0) is the route's latency; only a GPU sending to itself (or a group of one) is free.
  std::int64_t concurrent_ns(const std::vector<Flow>& flows) const;

  std::int64_t p2p_ns(int src_gpu, int dst_gpu, double bytes) const;

  // Ring collectives over `gpus` (bytes = the full buffer per GPU), hierarchical when they span nodes:
  // all-reduce 2(n-1)/n, reduce-scatter and all-gather (n-1)/n of the bytes over the bus bandwidth.
  std::int64_t all_reduce_ns(const std::vector<int>& gpus, double bytes) const;
  std::int64_t reduce_scatter_ns(const std::vector<int>& gpus, double bytes) const;
  std::int64_t all_gather_ns(const std::vector<int>& gpus, double bytes) const;

  // MoE dispatch or combine inside the expert-parallel group `gpus`: every GPU sends `bytes_per_gpu`
  // (tokens x hidden x bytes per element x experts per token) spread evenly over the group, each token to
  // at most `max_nodes` nodes (0: any); cross-node traffic goes over IB to the same-index GPU, then NVLink.
  // IB carries a token once per target node, which needs `experts_per_token` (top-k) to know; with 0 every
  // expert copy crosses IB on its own, and max_nodes changes nothing. Formulas: topology.cpp's header.
  std::int64_t all_to_all_ns(const std::vector<int>& gpus, double bytes_per_gpu, int max_nodes,
                             int experts_per_token = 0) const;
  // The flows all_to_all_ns charges: IB flows to the receiving GPU of each target node (deduplicated
  // bytes), NVLink flows inside nodes (local copies and forwarding). Their time is concurrent_ns's
  // bandwidth term; the latency is IB's plus NVLink's, as forwarding follows the IB hop.
  std::vector<Flow> all_to_all_flows(const std::vector<int>& gpus, double bytes_per_gpu, int max_nodes,
                                     int experts_per_token = 0) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pipesim
