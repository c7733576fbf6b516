// The Topology (see topology.hpp): a Boost.Graph of the cluster's devices and directed links, structural
// routes over it, and the cost of flows, ring collectives and the MoE all-to-all.
//
// Graph. Per node one NVSwitch; per GPU a link GPU->NVSwitch and NVSwitch->GPU (nvlink_GBps each way) and a
// PCIe link each way to its NIC (nic_GBps: the host side keeps up with the wire, so it never binds before
// the IB link). GPU i of a node uses NIC i * nics / gpus_per_node. NIC k of every node sits on rail k, its
// own two-layer fat tree (DeepSeek's multi-plane fat tree; DGX SuperPODs are rail-optimized the same way):
// NIC<->leaf links at nic_effective_GBps; up to leaf_switch_ports nodes share one leaf and need no spine,
// beyond that each leaf takes ports/2 nodes and L = ceil(nodes / (ports/2)) leaves connect to S spines
// (spine_switches, or ceil(L/2)) through trunks of min(ports/L, ceil(ports/2/S)) links: non-blocking by
// default, oversubscribed when the user gives fewer spines. A bidirectional link is two directed edges.
// Rails do not connect to each other, as in DeepSeek's planes.
//
// Routes (deterministic, derived from the structure; shortest_hops() is the BFS reference tests compare):
// same node GPU -> NVSwitch -> GPU. Across nodes to the destination's local index j: when the source's NIC
// is not on j's rail, first NVLink to the local GPU of index j (NCCL's PXN), then that GPU's NIC -> leaf
// [-> spine (destination node mod S, static D-mod-k) -> leaf] -> NIC -> destination GPU.
//
// Time of concurrent flows: max over links of (bytes on the link / GB/s), with 1 GB/s = 1 byte/ns, plus the
// largest route latency; a route's latency is nvlink_latency_us per NVSwitch crossing (on the GPU->NVSwitch
// link) plus ib_latency_us per fabric crossing (on the NIC->leaf link). Rounded up to whole ns. Zero-byte
// flows pay the latency too, so every cost is latency + bytes / bandwidth and p2p_ns(a, b, 0) is a route's
// latency; only a GPU sending to itself, or a group of one, is free.
//
// Ring collectives, nccl-tests conventions, S = the full buffer per GPU. A ring phase over m GPUs sends
// passes x (m-1)/m x chunk from each GPU to its successor (passes = 2 for all-reduce, 1 otherwise): its time
// is those flows' bandwidth term plus passes x (m-1) x the slowest hop's latency. Groups inside one node are
// one ring (all-reduce 2(n-1)/n S / nvlink). Groups across N nodes with g members per node run
// hierarchically: intra-node reduce-scatter (rings of each node's members, chunk S), inter-node ring among
// the j-th members of every node for each j < g (chunk S/g, each on its own NIC: ring j uses rail j), then
// intra-node all-gather for all-reduce. Uniform groups with a NIC per GPU, non-blocking fabric:
//   all_reduce     = 2(g-1)/g S/nvlink + 2(N-1)/N (S/g)/nic_eff + 2(g-1) lat_nvl + 2(N-1) lat_ib
//   reduce_scatter = all_gather = (g-1)/g S/nvlink + (N-1)/N (S/g)/nic_eff + (g-1) lat_nvl + (N-1) lat_ib
// Members sharing a NIC, PXN hops and oversubscribed spines show up as link loads, not as special cases.
// Uneven groups use g = the most members of a node, ring j taking member j mod g_i of node i.
//
// MoE all-to-all (DeepSeek-V3 dispatch/combine). Group of n GPUs on N nodes, g_i of them on node i; each GPU
// sends B = tokens x hidden x bytes x k (k = experts_per_token); experts are spread evenly over the group, so
// node i holds g_i/n of them. Node-limited routing sends a token to M = min(max_nodes or N, N, k) nodes,
// chosen by affinity, not locality: node i is among them with probability p_i = min(1, M g_i / n)
// (= M/N for uniform groups). A token crosses IB once per remote target node (t = B/k bytes), landing on
// the receiving GPU of that node: the member at the sender's position in its own node (the same-index GPU
// for aligned groups). The receiver forwards the expert copies over NVLink; local copies go directly. So:
//   IB flow s -> receiver(s, i), every remote node i:   (B/k) p_i        (k = 0: B g_i/n, no deduplication)
//   NVLink flow r -> u, r != u on one node:             B/n x (1 + remote senders whose receiver is r)
// For uniform groups with a NIC per GPU this gives, per GPU:
//   IB out/in = (B/k) M (N-1)/N       NVLink out/in = B (g-1)/g   (independent of M: every expert copy not
//                                                                  for the receiver itself crosses NVLink once)
//   time = max(IB / nic_eff, NVLink / nvlink) + lat_ib + lat_nvl     (one node: B (g-1)/g / nvlink + lat_nvl)
// IB and NVLink overlap (DeepEP pipelines them), hence the max. Copies are counted per expert: DeepEP sends
// a token once per GPU, so when a GPU holds several of a token's experts this is an upper bound.
#include "topologies/topology.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/visitors.hpp>
#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

struct EdgeData {
  int link = 0;  // index into Impl::links
};
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property, EdgeData>;

struct Link {
  int from = 0, to = 0;  // vertices
  double GBps = 0;
  double latency_ns = 0;
};

// Whole nanoseconds, rounding up, but not past an integer the sum only misses by floating-point noise.
std::int64_t round_up_ns(double ns) {
  double nearest = std::round(ns);
  if (std::abs(ns - nearest) <= 1e-9 * std::max(1.0, ns)) return static_cast<std::int64_t>(nearest);
  return static_cast<std::int64_t>(std::ceil(ns));
}

int ceil_div(int a, int b) { return (a + b - 1) / b; }

enum class Collective { AllReduce, ReduceScatter, AllGather };

}  // namespace

struct Topology::Impl {
  ClusterSpec spec;
  int gpus = 0, nodes = 0, per_node = 0, nics = 0;
  int leaves = 1, nodes_per_leaf = 1, spines = 0;  // per rail
  int nvswitch_base = 0, nic_base = 0, leaf_base = 0, spine_base = 0, vertices = 0;
  std::vector<Link> links;
  Graph graph;
  // Link ids by position, so routes are built without searching the graph.
  std::vector<int> gpu_up, gpu_down, gpu_to_nic, nic_to_gpu;  // [gpu]
  std::vector<int> nic_up, nic_down;                          // [node * nics + k]
  // Trunks: leaf_up[(rail * leaves + leaf) * spines + spine], spine_down[(rail * spines + spine) * leaves + leaf].
  std::vector<int> leaf_up, spine_down;

  explicit Impl(const ClusterSpec& s);
  int add_link(int from, int to, double GBps, double latency_ns);
  int nic_of_local(int local) const { return local * nics / per_node; }
  int leaf_of(int node) const { return node / nodes_per_leaf; }
  void check_gpu(int gpu, std::string_view what) const;
  void append_route(int src, int dst, std::vector<int>& out) const;
  double route_latency_ns(int src, int dst) const;
  std::string vertex_name(int v) const;

  // Bytes per link of `flows`, and the largest of (bytes / GB/s) over links.
  double bandwidth_ns(const std::vector<Flow>& flows, double* max_latency_ns) const;
  std::vector<std::vector<int>> group_by_node(const std::vector<int>& group, double bytes, std::string_view op) const;
  double ring_phase_ns(const std::vector<std::vector<int>>& rings, double chunk_bytes, int passes) const;
  double collective_ns(const std::vector<int>& group, double bytes, Collective kind, std::string_view op) const;
  // Collectives priced once per (kind, group, bytes): a --full step asks the same data-parallel group's
  // reduce-scatter and all-gather once per replica, and routing 128 GPUs hop by hop is most of its time.
  // Guarded: a Topology may be shared by threads.
  double collective_ns_memo(const std::vector<int>& group, double bytes, Collective kind, std::string_view op) const {
    auto key = std::make_tuple(static_cast<int>(kind), group, bytes);
    {
      std::lock_guard lock(memo_mutex);
      auto it = memo.find(key);
      if (it != memo.end()) return it->second;
    }
    double ns = collective_ns(group, bytes, kind, op);
    std::lock_guard lock(memo_mutex);
    memo.emplace(std::move(key), ns);
    return ns;
  }
  mutable std::mutex memo_mutex;
  mutable std::map<std::tuple<int, std::vector<int>, double>, double> memo;
};

Topology::Impl::Impl(const ClusterSpec& s) : spec(s) {
  validate_cluster(spec, spec.name.empty() ? "cluster" : "cluster '" + spec.name + "'");
  nodes = spec.nodes;
  per_node = spec.gpus_per_node;
  nics = spec.nics_per_node;
  gpus = spec.total_gpus();
  const int ports = spec.leaf_switch_ports;
  if (nodes > ports) {
    nodes_per_leaf = ports / 2;
    leaves = ceil_div(nodes, nodes_per_leaf);
    spines = spec.spine_switches > 0 ? spec.spine_switches : ceil_div(leaves, 2);
  } else {
    nodes_per_leaf = nodes;
  }
  nvswitch_base = gpus;
  nic_base = nvswitch_base + nodes;
  leaf_base = nic_base + nodes * nics;
  spine_base = leaf_base + nics * leaves;
  vertices = spine_base + nics * spines;
  // One by one: assigning a sized Graph trips g++ 12's -Wmaybe-uninitialized inside Boost.
  for (int v = 0; v < vertices; ++v) boost::add_vertex(graph);

  const double nvl_latency_ns = spec.nvlink_latency_us * 1000, ib_latency_ns = spec.ib_latency_us * 1000;
  links.reserve(static_cast<std::size_t>(6 * gpus + 2 * nics * leaves * spines));
  gpu_up.resize(gpus);
  gpu_down.resize(gpus);
  gpu_to_nic.resize(gpus);
  nic_to_gpu.resize(gpus);
  for (int gpu = 0; gpu < gpus; ++gpu) {
    int node = gpu / per_node, nic = nic_base + node * nics + nic_of_local(gpu % per_node);
    gpu_up[gpu] = add_link(gpu, nvswitch_base + node, spec.nvlink_GBps, nvl_latency_ns);
    gpu_down[gpu] = add_link(nvswitch_base + node, gpu, spec.nvlink_GBps, 0);
    gpu_to_nic[gpu] = add_link(gpu, nic, spec.nic_GBps, 0);
    nic_to_gpu[gpu] = add_link(nic, gpu, spec.nic_GBps, 0);
  }
  nic_up.resize(static_cast<std::size_t>(nodes) * nics);
  nic_down.resize(nic_up.size());
  for (int node = 0; node < nodes; ++node)
    for (int k = 0; k < nics; ++k) {
      int nic = node * nics + k, leaf = leaf_base + k * leaves + leaf_of(node);
      nic_up[nic] = add_link(nic_base + nic, leaf, spec.nic_effective_GBps, ib_latency_ns);
      nic_down[nic] = add_link(leaf, nic_base + nic, spec.nic_effective_GBps, 0);
    }
  if (spines > 0) {
    const int trunk = std::max(1, std::min(ports / leaves, ceil_div(ports / 2, spines)));
    leaf_up.resize(static_cast<std::size_t>(nics) * leaves * spines);
    spine_down.resize(leaf_up.size());
    for (int k = 0; k < nics; ++k)
      for (int l = 0; l < leaves; ++l)
        for (int sp = 0; sp < spines; ++sp) {
          int leaf = leaf_base + k * leaves + l, spine = spine_base + k * spines + sp;
          leaf_up[(k * leaves + l) * spines + sp] = add_link(leaf, spine, trunk * spec.nic_effective_GBps, 0);
          spine_down[(k * spines + sp) * leaves + l] = add_link(spine, leaf, trunk * spec.nic_effective_GBps, 0);
        }
  }
}

int Topology::Impl::add_link(int from, int to, double GBps, double latency_ns) {
  int id = static_cast<int>(links.size());
  links.push_back({from, to, GBps, latency_ns});
  boost::add_edge(static_cast<std::size_t>(from), static_cast<std::size_t>(to), EdgeData{id}, graph);
  return id;
}

void Topology::Impl::check_gpu(int gpu, std::string_view what) const {
  if (gpu < 0 || gpu >= gpus)
    throw Error(fmt::format("{}: GPU {} is not in cluster '{}' (GPUs 0..{})", what, gpu, spec.name, gpus - 1));
}

void Topology::Impl::append_route(int src, int dst, std::vector<int>& out) const {
  if (src == dst) return;
  const int a = src / per_node, b = dst / per_node, j = dst % per_node;
  if (a == b) {
    out.push_back(gpu_up[src]);
    out.push_back(gpu_down[dst]);
    return;
  }
  const int rail = nic_of_local(j);
  int sender = src;
  if (nic_of_local(src % per_node) != rail) {  // PXN: NVLink to the local GPU on the destination's rail
    sender = a * per_node + j;
    out.push_back(gpu_up[src]);
    out.push_back(gpu_down[sender]);
  }
  out.push_back(gpu_to_nic[sender]);
  out.push_back(nic_up[a * nics + rail]);
  if (leaf_of(a) != leaf_of(b)) {
    const int spine = b % spines;
    out.push_back(leaf_up[(rail * leaves + leaf_of(a)) * spines + spine]);
    out.push_back(spine_down[(rail * spines + spine) * leaves + leaf_of(b)]);
  }
  out.push_back(nic_down[b * nics + rail]);
  out.push_back(nic_to_gpu[dst]);
}

double Topology::Impl::route_latency_ns(int src, int dst) const {
  std::vector<int> r;
  append_route(src, dst, r);
  double latency = 0;
  for (int link : r) latency += links[link].latency_ns;
  return latency;
}

std::string Topology::Impl::vertex_name(int v) const {
  if (v < nvswitch_base) return fmt::format("n{}.gpu{}", v / per_node, v % per_node);
  if (v < nic_base) return fmt::format("n{}.nvswitch", v - nvswitch_base);
  if (v < leaf_base) return fmt::format("n{}.nic{}", (v - nic_base) / nics, (v - nic_base) % nics);
  if (v < spine_base) return fmt::format("rail{}.leaf{}", (v - leaf_base) / leaves, (v - leaf_base) % leaves);
  return fmt::format("rail{}.spine{}", (v - spine_base) / spines, (v - spine_base) % spines);
}

double Topology::Impl::bandwidth_ns(const std::vector<Flow>& flows, double* max_latency_ns) const {
  // Loads live in a reused table; only the links a flow touched are read back and cleared, so a call
  // costs the routes' length, not the cluster's size (a sweep or --full makes many small calls).
  thread_local std::vector<double> load;
  thread_local std::vector<int> touched;
  if (load.size() < links.size()) load.assign(links.size(), 0.0);
  touched.clear();
  std::vector<int> r;
  double latency = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const Flow& f = flows[i];
    if (f.src_gpu < 0 || f.src_gpu >= gpus) check_gpu(f.src_gpu, fmt::format("flow {} src_gpu", i));
    if (f.dst_gpu < 0 || f.dst_gpu >= gpus) check_gpu(f.dst_gpu, fmt::format("flow {} dst_gpu", i));
    if (!(f.bytes >= 0) || !std::isfinite(f.bytes))
      throw Error(fmt::format("flow {}: bytes must be a non-negative number, got {}", i, f.bytes));
    if (f.src_gpu == f.dst_gpu) continue;  // zero bytes still pay the latency: time stays latency + bytes / GB/s
    r.clear();
    append_route(f.src_gpu, f.dst_gpu, r);
    double route_latency = 0;
    for (int link : r) {
      if (load[static_cast<std::size_t>(link)] == 0) touched.push_back(link);
      load[static_cast<std::size_t>(link)] += f.bytes;
      route_latency += links[static_cast<std::size_t>(link)].latency_ns;
    }
    latency = std::max(latency, route_latency);
  }
  double worst = 0;
  for (int l : touched) {
    worst = std::max(worst, load[static_cast<std::size_t>(l)] / links[static_cast<std::size_t>(l)].GBps);
    load[static_cast<std::size_t>(l)] = 0;
  }
  if (max_latency_ns) *max_latency_ns = latency;
  return worst;
}

// Members of `group` per node, nodes ascending and members ascending, after checking the arguments.
std::vector<std::vector<int>> Topology::Impl::group_by_node(const std::vector<int>& group, double bytes,
                                                            std::string_view op) const {
  if (group.empty()) throw Error(fmt::format("{}: the group of GPUs is empty", op));
  if (!(bytes >= 0) || !std::isfinite(bytes))
    throw Error(fmt::format("{}: bytes must be a non-negative number, got {}", op, bytes));
  std::vector<int> sorted = group;
  for (int gpu : sorted) check_gpu(gpu, op);
  std::sort(sorted.begin(), sorted.end());
  if (auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end())
    throw Error(fmt::format("{}: GPU {} appears twice in the group", op, *dup));
  std::vector<std::vector<int>> by_node;
  for (int gpu : sorted) {
    if (by_node.empty() || by_node.back().front() / per_node != gpu / per_node) by_node.emplace_back();
    by_node.back().push_back(gpu);
  }
  return by_node;
}

double Topology::Impl::ring_phase_ns(const std::vector<std::vector<int>>& rings, double chunk_bytes,
                                     int passes) const {
  std::vector<Flow> flows;
  double latency = 0;
  for (auto& ring : rings) {
    const auto m = static_cast<int>(ring.size());
    if (m < 2) continue;
    double hop_latency = 0;
    for (int i = 0; i < m; ++i) {
      int next = ring[static_cast<std::size_t>((i + 1) % m)];
      flows.push_back({ring[static_cast<std::size_t>(i)], next, passes * (m - 1.0) / m * chunk_bytes});
      hop_latency = std::max(hop_latency, route_latency_ns(ring[static_cast<std::size_t>(i)], next));
    }
    latency = std::max(latency, passes * (m - 1) * hop_latency);
  }
  if (flows.empty()) return 0;
  return bandwidth_ns(flows, nullptr) + latency;
}

double Topology::Impl::collective_ns(const std::vector<int>& group, double bytes, Collective kind,
                                     std::string_view op) const {
  auto by_node = group_by_node(group, bytes, op);
  if (group.size() == 1) return 0;
  std::size_t most = 0;
  for (auto& members : by_node) most = std::max(most, members.size());
  // Inter-node ring j joins the j-th member of every node: on aligned groups, rail j.
  std::vector<std::vector<int>> inter(most);
  for (std::size_t j = 0; j < most; ++j)
    for (auto& members : by_node) inter[j].push_back(members[j % members.size()]);
  const double intra_ns = ring_phase_ns(by_node, bytes, 1);
  const int passes = kind == Collective::AllReduce ? 2 : 1;
  const double inter_ns = ring_phase_ns(inter, bytes / static_cast<double>(most), passes);
  return (kind == Collective::AllReduce ? 2 * intra_ns : intra_ns) + inter_ns;
}

Topology::Topology(const ClusterSpec& spec) : impl_(std::make_unique<Impl>(spec)) {}
Topology::~Topology() = default;
Topology::Topology(Topology&&) noexcept = default;
Topology& Topology::operator=(Topology&&) noexcept = default;

const ClusterSpec& Topology::spec() const { return impl_->spec; }

std::vector<int> Topology::route(int src_gpu, int dst_gpu) const {
  impl_->check_gpu(src_gpu, "route source");
  impl_->check_gpu(dst_gpu, "route destination");
  std::vector<int> r;
  impl_->append_route(src_gpu, dst_gpu, r);
  return r;
}

double Topology::link_GBps(int link) const {
  if (link < 0 || link >= links()) throw Error(fmt::format("link {} does not exist (links 0..{})", link, links() - 1));
  return impl_->links[static_cast<std::size_t>(link)].GBps;
}

int Topology::links() const { return static_cast<int>(impl_->links.size()); }

std::string Topology::link_name(int link) const {
  if (link < 0 || link >= links()) throw Error(fmt::format("link {} does not exist (links 0..{})", link, links() - 1));
  const Link& l = impl_->links[static_cast<std::size_t>(link)];
  return impl_->vertex_name(l.from) + "->" + impl_->vertex_name(l.to);
}

int Topology::shortest_hops(int src_gpu, int dst_gpu) const {
  impl_->check_gpu(src_gpu, "shortest_hops source");
  impl_->check_gpu(dst_gpu, "shortest_hops destination");
  std::vector<int> distance(static_cast<std::size_t>(impl_->vertices), -1);
  distance[static_cast<std::size_t>(src_gpu)] = 0;
  auto record = boost::record_distances(distance.data(), boost::on_tree_edge());
  boost::breadth_first_search(impl_->graph, static_cast<std::size_t>(src_gpu),
                              boost::visitor(boost::make_bfs_visitor(record)));
  return distance[static_cast<std::size_t>(dst_gpu)];
}

std::int64_t Topology::concurrent_ns(const std::vector<Flow>& flows) const {
  double latency = 0;
  double bandwidth = impl_->bandwidth_ns(flows, &latency);
  return round_up_ns(bandwidth + latency);
}

std::int64_t Topology::p2p_ns(int src_gpu, int dst_gpu, double bytes) const {
  return concurrent_ns({Flow{src_gpu, dst_gpu, bytes}});
}

std::int64_t Topology::all_reduce_ns(const std::vector<int>& gpus, double bytes) const {
  return round_up_ns(impl_->collective_ns_memo(gpus, bytes, Collective::AllReduce, "all-reduce"));
}

std::int64_t Topology::reduce_scatter_ns(const std::vector<int>& gpus, double bytes) const {
  return round_up_ns(impl_->collective_ns_memo(gpus, bytes, Collective::ReduceScatter, "reduce-scatter"));
}

std::int64_t Topology::all_gather_ns(const std::vector<int>& gpus, double bytes) const {
  return round_up_ns(impl_->collective_ns_memo(gpus, bytes, Collective::AllGather, "all-gather"));
}

std::vector<Flow> Topology::all_to_all_flows(const std::vector<int>& gpus, double bytes_per_gpu, int max_nodes,
                                             int experts_per_token) const {
  auto by_node = impl_->group_by_node(gpus, bytes_per_gpu, "all-to-all");
  if (max_nodes < 0) throw Error(fmt::format("all-to-all: max_nodes must be 0 (any) or positive, got {}", max_nodes));
  if (experts_per_token < 0)
    throw Error(
        fmt::format("all-to-all: experts_per_token must be 0 (unknown) or positive, got {}", experts_per_token));
  std::vector<Flow> flows;
  if (gpus.size() == 1) return flows;
  const double n = static_cast<double>(gpus.size()), B = bytes_per_gpu;
  const auto N = static_cast<int>(by_node.size());
  int M = max_nodes == 0 ? N : std::min(max_nodes, N);
  if (experts_per_token > 0) M = std::min(M, experts_per_token);
  // remote_senders[node][position]: how many GPUs of other nodes land their IB traffic on that member.
  std::vector<std::vector<int>> remote_senders(by_node.size());
  for (std::size_t i = 0; i < by_node.size(); ++i) remote_senders[i].assign(by_node[i].size(), 0);
  for (std::size_t a = 0; a < by_node.size(); ++a)
    for (std::size_t p = 0; p < by_node[a].size(); ++p)
      for (std::size_t i = 0; i < by_node.size(); ++i) {
        if (i == a) continue;
        const auto g_i = static_cast<double>(by_node[i].size());
        const std::size_t receiver = p % by_node[i].size();
        const double ib =
            experts_per_token > 0 ? B / experts_per_token * std::min(1.0, M * g_i / n) : B * g_i / n;
        flows.push_back({by_node[a][p], by_node[i][receiver], ib});
        ++remote_senders[i][receiver];
      }
  for (std::size_t i = 0; i < by_node.size(); ++i)
    for (std::size_t r = 0; r < by_node[i].size(); ++r)
      for (std::size_t u = 0; u < by_node[i].size(); ++u)
        if (u != r) flows.push_back({by_node[i][r], by_node[i][u], B / n * (1 + remote_senders[i][r])});
  return flows;
}

std::int64_t Topology::all_to_all_ns(const std::vector<int>& gpus, double bytes_per_gpu, int max_nodes,
                                     int experts_per_token) const {
  auto flows = all_to_all_flows(gpus, bytes_per_gpu, max_nodes, experts_per_token);
  if (flows.empty()) return 0;
  // Forwarding follows the IB hop, so the latencies add: the slowest cross-node flow, then the slowest
  // NVLink flow (a group in one node has only the latter).
  double ib_latency = 0, nvl_latency = 0;
  for (auto& f : flows) {
    double& slot = node_of(f.src_gpu) != node_of(f.dst_gpu) ? ib_latency : nvl_latency;
    slot = std::max(slot, impl_->route_latency_ns(f.src_gpu, f.dst_gpu));
  }
  return round_up_ns(impl_->bandwidth_ns(flows, nullptr) + ib_latency + nvl_latency);
}

}  // namespace pipesim
