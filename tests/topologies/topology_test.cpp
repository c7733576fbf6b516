// The Topology against hand-computed times on DeepSeek's H800 cluster (NVLink 160 GB/s and 3 us, IB 40 GB/s
// effective and 5 us, 8 GPUs and NICs per node, 64-port leaves): routes, shared links, ring collectives
// (flat and hierarchical), the node-limited MoE all-to-all, and the BFS reference for every route shape.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/error.hpp"
#include "topologies/cluster.hpp"
#include "topologies/topology.hpp"

namespace pipesim {
namespace {

const Topology& deepseek() {
  static const Topology topology(load_cluster("deepseek-h800"));
  return topology;
}

// DeepSeek's cluster with half as many NICs: GPUs 2i and 2i+1 share NIC i.
ClusterSpec shared_nics(int nodes) {
  ClusterSpec c = load_cluster("deepseek-h800");
  c.name = "shared-nics";
  c.nodes = nodes;
  c.nics_per_node = 4;
  return c;
}

std::vector<int> iota(int first, int count, int stride = 1) {
  std::vector<int> v;
  for (int i = 0; i < count; ++i) v.push_back(first + i * stride);
  return v;
}

std::vector<std::string> names(const Topology& t, const std::vector<int>& route) {
  std::vector<std::string> out;
  for (int link : route) out.push_back(t.link_name(link));
  return out;
}

double cross_node_bytes(const Topology& t, const std::vector<Flow>& flows, int src = -1) {
  double bytes = 0;
  for (auto& f : flows)
    if (t.node_of(f.src_gpu) != t.node_of(f.dst_gpu) && (src < 0 || f.src_gpu == src)) bytes += f.bytes;
  return bytes;
}

TEST(Topology, ThePresetNumbersTheseTestsAssume) {
  const ClusterSpec& c = deepseek().spec();
  ASSERT_DOUBLE_EQ(c.nvlink_GBps, 160);
  ASSERT_DOUBLE_EQ(c.nvlink_latency_us, 3);
  ASSERT_DOUBLE_EQ(c.nic_effective_GBps, 40);
  ASSERT_DOUBLE_EQ(c.ib_latency_us, 5);
  ASSERT_EQ(c.leaf_switch_ports, 64);
  ASSERT_EQ(c.total_gpus(), 2048);
}

TEST(Topology, InsideANodeOverNVSwitch) {
  const Topology& t = deepseek();
  EXPECT_EQ(names(t, t.route(0, 5)), (std::vector<std::string>{"n0.gpu0->n0.nvswitch", "n0.nvswitch->n0.gpu5"}));
  EXPECT_EQ(t.p2p_ns(0, 5, 1e9), 3'000 + 6'250'000);  // 3 us + 1 GB / 160 GB/s
  EXPECT_EQ(t.p2p_ns(5, 5, 1e9), 0);
  EXPECT_EQ(t.p2p_ns(0, 5, 0), 3'000) << "zero bytes pay the latency";
  EXPECT_EQ(t.p2p_ns(0, 5, 1), 3'001) << "partial nanoseconds round up";
}

TEST(Topology, AcrossNodesOnTheSameRail) {
  const Topology& t = deepseek();
  EXPECT_EQ(names(t, t.route(3, 11)), (std::vector<std::string>{"n0.gpu3->n0.nic3", "n0.nic3->rail3.leaf0",
                                                                 "rail3.leaf0->n1.nic3", "n1.nic3->n1.gpu3"}));
  EXPECT_EQ(t.p2p_ns(3, 11, 1e9), 5'000 + 25'000'000);  // 5 us + 1 GB / 40 GB/s
  EXPECT_DOUBLE_EQ(t.link_GBps(t.route(3, 11)[1]), 40);
}

TEST(Topology, AcrossNodesToAnotherIndexGoesOverNVLinkFirst) {
  const Topology& t = deepseek();
  // n0.gpu1 -> n1.gpu2: PXN, NVLink to n0.gpu2, then rail 2.
  EXPECT_EQ(names(t, t.route(1, 10)),
            (std::vector<std::string>{"n0.gpu1->n0.nvswitch", "n0.nvswitch->n0.gpu2", "n0.gpu2->n0.nic2",
                                      "n0.nic2->rail2.leaf0", "rail2.leaf0->n1.nic2", "n1.nic2->n1.gpu2"}));
  EXPECT_EQ(t.p2p_ns(1, 10, 1e9), 3'000 + 5'000 + 25'000'000);
}

TEST(Topology, NodesOnDifferentLeavesCrossASpine) {
  const Topology& t = deepseek();
  // 32 nodes per leaf; node 33 is on leaf 1; 4 spines per rail, chosen by destination node mod 4.
  EXPECT_EQ(names(t, t.route(0, 33 * 8)),
            (std::vector<std::string>{"n0.gpu0->n0.nic0", "n0.nic0->rail0.leaf0", "rail0.leaf0->rail0.spine1",
                                      "rail0.spine1->rail0.leaf1", "rail0.leaf1->n33.nic0", "n33.nic0->n33.gpu0"}));
  EXPECT_DOUBLE_EQ(t.link_GBps(t.route(0, 33 * 8)[2]), 8 * 40.0) << "8 ports from each leaf to each of 4 spines";
  EXPECT_EQ(t.p2p_ns(0, 33 * 8, 1e9), t.p2p_ns(0, 8, 1e9)) << "a non-blocking fat tree adds no time";
}

TEST(Topology, FlowsSharingALinkShareItsBandwidth) {
  const Topology& t = deepseek();
  const double GB = 1e9;
  const std::int64_t one = t.concurrent_ns({{0, 8, GB}});
  EXPECT_EQ(one, 25'005'000);
  EXPECT_EQ(t.concurrent_ns({{0, 8, GB}, {0, 16, GB}}), 50'005'000) << "both leave through n0.nic0";
  EXPECT_EQ(t.concurrent_ns({{8, 0, GB}, {16, 0, GB}}), 50'005'000) << "both arrive through n0.nic0";
  EXPECT_EQ(t.concurrent_ns({{0, 8, GB}, {1, 9, GB}}), one) << "rails 0 and 1 are separate";
  EXPECT_EQ(t.concurrent_ns({{0, 1, GB}, {2, 1, GB}}), 3'000 + 12'500'000) << "both enter n0.gpu1 from the NVSwitch";
  // Two GPUs behind one NIC.
  Topology shared(shared_nics(2));
  EXPECT_EQ(shared.concurrent_ns({{0, 8, GB}}), one);
  EXPECT_EQ(shared.concurrent_ns({{0, 8, GB}, {1, 9, GB}}), 50'005'000);
  EXPECT_EQ(shared.concurrent_ns({{0, 8, GB}, {2, 10, GB}}), one);
}

TEST(Topology, ConcurrentLatencyIsTheLargestNotTheSum) {
  const Topology& t = deepseek();
  EXPECT_EQ(t.concurrent_ns({{0, 1, 160}, {2, 10, 40}}), 5'000 + 1);
  EXPECT_EQ(t.concurrent_ns({{0, 1, 160}, {3, 10, 40}}), 8'000 + 1) << "the PXN route pays both latencies";
  EXPECT_EQ(t.concurrent_ns({}), 0);
}

TEST(Topology, OversubscribedSpinesSlowCrossLeafTraffic) {
  // Every node of leaf 0 sends 1 GB on rail 0 to a node of leaf 1.
  std::vector<Flow> flows;
  for (int node = 0; node < 32; ++node) flows.push_back({node * 8, (32 + node) * 8, 1e9});
  const Topology& full = deepseek();
  EXPECT_EQ(full.concurrent_ns(flows), 25'005'000) << "non-blocking: as fast as one flow";
  ClusterSpec one_spine = full.spec();
  one_spine.spine_switches = 1;  // 8 uplinks (all a spine's share of 64 ports) for 32 nodes: 4:1
  EXPECT_EQ(Topology(one_spine).concurrent_ns(flows), 100'005'000);
}

TEST(Topology, FlowArgumentsAreChecked) {
  const Topology& t = deepseek();
  EXPECT_THROW(t.concurrent_ns({{0, 2048, 1}}), Error);
  EXPECT_THROW(t.concurrent_ns({{-1, 0, 1}}), Error);
  EXPECT_THROW(t.concurrent_ns({{0, 1, -1}}), Error);
  EXPECT_THROW(t.concurrent_ns({{0, 1, std::nan("")}}), Error);
  EXPECT_THROW(t.route(0, 4096), Error);
  EXPECT_THROW(t.link_GBps(t.links()), Error);
  try {
    t.p2p_ns(0, 5000, 1);
    FAIL() << "GPU 5000 does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "flow 0 dst_gpu: GPU 5000 is not in cluster 'deepseek-h800' (GPUs 0..2047)");
  }
}

// Routes are paths from src to dst, as short as any path in the graph (BFS), the same every time, and
// as long one way as the other.
void check_routes(const Topology& t, const std::vector<std::pair<int, int>>& pairs) {
  for (auto [a, b] : pairs) {
    SCOPED_TRACE(testing::Message() << a << " -> " << b);
    auto r = t.route(a, b);
    EXPECT_EQ(r, t.route(a, b));
    EXPECT_EQ(r.size(), t.route(b, a).size());
    EXPECT_EQ(static_cast<int>(r.size()), t.shortest_hops(a, b));
    EXPECT_EQ(std::set<int>(r.begin(), r.end()).size(), r.size()) << "no link twice";
    auto n = names(t, r);
    auto from = [](const std::string& s) { return s.substr(0, s.find("->")); };
    auto to = [](const std::string& s) { return s.substr(s.find("->") + 2); };
    ASSERT_EQ(n.empty(), a == b);
    if (n.empty()) continue;
    auto gpu_name = [&](int g) { return "n" + std::to_string(t.node_of(g)) + ".gpu" + std::to_string(g % 8); };
    EXPECT_EQ(from(n.front()), gpu_name(a));
    EXPECT_EQ(to(n.back()), gpu_name(b));
    for (std::size_t i = 1; i < n.size(); ++i) EXPECT_EQ(to(n[i - 1]), from(n[i]));
  }
}

TEST(Topology, RoutesAreShortestConnectedDeterministicAndSymmetricInLength) {
  std::vector<std::pair<int, int>> pairs = {{0, 0}, {0, 7}, {7, 0}, {0, 8}, {1, 10}, {0, 33 * 8 + 5},
                                            {2047, 0}, {100, 1900}, {15, 8}, {9, 255 * 8 + 1}};
  for (int i = 0; i < 64; ++i) pairs.emplace_back((i * 977) % 2048, (i * 1531 + 77) % 2048);
  check_routes(deepseek(), pairs);
  Topology shared(shared_nics(80));  // 80 nodes: 3 leaves per rail, 2 spines
  check_routes(shared, {{0, 1}, {0, 9}, {1, 8}, {0, 10}, {3, 70 * 8 + 6}, {639, 0}, {5, 5 + 40 * 8}});
}

TEST(Topology, RingCollectivesInsideANode) {
  const Topology& t = deepseek();
  const auto node0 = iota(0, 8);
  // 2 (n-1)/n x 1 GB / 160 GB/s + 2 (n-1) x 3 us.
  EXPECT_EQ(t.all_reduce_ns(node0, 1e9), 10'937'500 + 42'000);
  EXPECT_EQ(t.reduce_scatter_ns(node0, 1e9), 5'468'750 + 21'000);
  EXPECT_EQ(t.all_gather_ns(node0, 1e9), 5'468'750 + 21'000);
  EXPECT_EQ(t.all_reduce_ns({4, 1, 6, 3}, 1e9), 9'375'000 + 18'000);
  EXPECT_EQ(t.all_reduce_ns({0, 1}, 1e9), 6'250'000 + 6'000);
  EXPECT_EQ(t.all_reduce_ns({3}, 1e9), 0);
  EXPECT_EQ(t.all_reduce_ns(node0, 0), 42'000) << "latency terms alone";
}

TEST(Topology, HierarchicalCollectivesAcrossNodes) {
  const Topology& t = deepseek();
  const auto two_nodes = iota(0, 16);
  // Intra reduce-scatter and all-gather (1 GB each over NVLink) + inter all-reduce of 1 GB / 8 per rail.
  const std::int64_t intra = 5'468'750 + 21'000;
  const std::int64_t inter_ar = 3'125'000 + 10'000;  // 2 (2-1)/2 x 125 MB / 40 GB/s + 2 x 5 us
  EXPECT_EQ(t.all_reduce_ns(two_nodes, 1e9), 2 * intra + inter_ar);
  EXPECT_EQ(t.reduce_scatter_ns(two_nodes, 1e9), intra + 1'562'500 + 5'000);
  EXPECT_EQ(t.all_gather_ns(two_nodes, 1e9), intra + 1'562'500 + 5'000);
  // One GPU per node (a data-parallel group on one rail): a plain ring over IB, 4 nodes.
  EXPECT_EQ(t.all_reduce_ns({0, 8, 16, 24}, 1e9), 37'500'000 + 30'000);
  // Across leaves the fat tree is non-blocking: the same time.
  EXPECT_EQ(t.all_reduce_ns({0, 8, 33 * 8, 34 * 8}, 1e9), 37'500'000 + 30'000);
}

TEST(Topology, HierarchicalCollectivesSlowDownWhenMembersShareANic) {
  Topology t(shared_nics(2));
  // Rails j = 0 and 1 both leave through NIC 0: twice the inter-node load.
  EXPECT_EQ(t.all_reduce_ns(iota(0, 16), 1e9), 2 * (5'468'750 + 21'000) + 6'250'000 + 10'000);
}

TEST(Topology, CollectiveArgumentsAreChecked) {
  const Topology& t = deepseek();
  EXPECT_THROW(t.all_reduce_ns({}, 1), Error);
  EXPECT_THROW(t.all_gather_ns({0, 1}, -1), Error);
  EXPECT_THROW(t.reduce_scatter_ns({0, 2048}, 1), Error);
  EXPECT_THROW(t.all_to_all_ns({0, 1}, 1, -1), Error);
  EXPECT_THROW(t.all_to_all_ns({0, 1}, 1, 0, -8), Error);
  try {
    t.all_reduce_ns({0, 1, 0}, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "all-reduce: GPU 0 appears twice in the group");
  }
}

// DeepSeek-V3's EP group: 64 GPUs over 8 nodes, top-8 experts, at most 4 nodes per token; 100 MB per GPU.
TEST(Topology, AllToAllMatchesTheClosedForm) {
  const Topology& t = deepseek();
  const auto ep64 = iota(0, 64);
  const double B = 1e8;
  // IB per NIC = B/k x M (N-1)/N = 12.5 MB x 4 x 7/8 = 43.75 MB -> 1'093'750 ns at 40 GB/s;
  // NVLink per GPU = B (g-1)/g = 87.5 MB -> 546'875 ns at 160 GB/s. IB binds; latency 5 + 3 us.
  EXPECT_EQ(t.all_to_all_ns(ep64, B, 4, 8), 1'093'750 + 8'000);
  auto flows = t.all_to_all_flows(ep64, B, 4, 8);
  EXPECT_DOUBLE_EQ(cross_node_bytes(t, flows, 0), 43.75e6);
  double nvlink_out_of_0 = 0;
  for (auto& f : flows)
    if (f.src_gpu == 0 && t.node_of(f.dst_gpu) == 0) nvlink_out_of_0 += f.bytes;
  EXPECT_DOUBLE_EQ(nvlink_out_of_0, 87.5e6);
  for (auto& f : flows)
    if (t.node_of(f.src_gpu) != t.node_of(f.dst_gpu)) {
      ASSERT_EQ(f.src_gpu % 8, f.dst_gpu % 8) << "IB goes to the same-index GPU";
    }
  // The flow model agrees: its bandwidth term plus IB then NVLink latency.
  EXPECT_EQ(t.all_to_all_ns(ep64, B, 4, 8), t.concurrent_ns(flows) + 3'000);
}

TEST(Topology, NodeLimitedRoutingCutsIbBytesAndTime) {
  const Topology& t = deepseek();
  const auto ep64 = iota(0, 64);
  const double B = 1e8;
  const double ib_unlimited = cross_node_bytes(t, t.all_to_all_flows(ep64, B, 0, 8));
  EXPECT_DOUBLE_EQ(ib_unlimited, 64 * 87.5e6);  // every remote node once per token: no saving at M = N = k
  EXPECT_DOUBLE_EQ(cross_node_bytes(t, t.all_to_all_flows(ep64, B, 4, 8)), ib_unlimited / 2);
  EXPECT_DOUBLE_EQ(cross_node_bytes(t, t.all_to_all_flows(ep64, B, 1, 8)), ib_unlimited / 8);
  EXPECT_EQ(t.all_to_all_ns(ep64, B, 0, 8), 2'187'500 + 8'000);
  EXPECT_EQ(t.all_to_all_ns(ep64, B, 8, 8), t.all_to_all_ns(ep64, B, 0, 8));
  // One node per token: IB carries 1/8 of it, NVLink (546'875 ns) binds.
  EXPECT_EQ(t.all_to_all_ns(ep64, B, 1, 8), 546'875 + 8'000);
  EXPECT_LT(t.all_to_all_ns(ep64, B, 1, 8), t.all_to_all_ns(ep64, B, 4, 8));
  // A token cannot reach more nodes than it has experts: top-2 reaches 2 nodes even when 8 are allowed,
  // and IB never carries more than the copies bound for other nodes, B (N-1)/N.
  EXPECT_DOUBLE_EQ(cross_node_bytes(t, t.all_to_all_flows(ep64, B, 0, 2), 0), 87.5e6);
  // Without top-k no deduplication is possible: every expert copy crosses on its own.
  EXPECT_EQ(t.all_to_all_ns(ep64, B, 4), 2'187'500 + 8'000);
  EXPECT_EQ(t.all_to_all_ns(ep64, B, 1), t.all_to_all_ns(ep64, B, 4));
}

TEST(Topology, AllToAllInsideOneNodeUsesOnlyNVLink) {
  const Topology& t = deepseek();
  const auto node0 = iota(0, 8);
  for (int max_nodes : {0, 1, 4}) {
    auto flows = t.all_to_all_flows(node0, 1e8, max_nodes, 8);
    EXPECT_EQ(cross_node_bytes(t, flows), 0);
    EXPECT_EQ(flows.size(), 56u);
    EXPECT_EQ(t.all_to_all_ns(node0, 1e8, max_nodes, 8), 546'875 + 3'000);
  }
  EXPECT_EQ(t.all_to_all_ns({5}, 1e8, 4, 8), 0);
  EXPECT_EQ(t.all_to_all_ns(node0, 0, 4, 8), 3'000);
  EXPECT_EQ(t.all_to_all_ns(iota(0, 16), 0, 4, 8), 8'000);
}

TEST(Topology, AllToAllWithOneGpuPerNodeIsAllIb) {
  const Topology& t = deepseek();
  // 8 GPUs on 8 nodes, one rail: no NVLink forwarding; IB = B/k x M (N-1)/N = 1e8/8 x 4 x 7/8.
  auto group = iota(0, 8, 8);
  EXPECT_EQ(cross_node_bytes(t, t.all_to_all_flows(group, 1e8, 4, 8), 0), 43.75e6);
  EXPECT_EQ(t.all_to_all_ns(group, 1e8, 4, 8), 1'093'750 + 5'000);
}

TEST(Topology, TheDeepSeekClusterIsBuiltQuickly) {
  auto start = std::chrono::steady_clock::now();
  Topology t(load_cluster("deepseek-h800"));
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("construction_ms", std::to_string(ms));
  std::printf("2048-GPU topology built in %.2f ms\n", ms);
  // 4 links per GPU, 2 per NIC, and 8 rails x 8 leaves x 4 spines trunks both ways.
  EXPECT_EQ(t.links(), 2048 * 4 + 2048 * 2 + 8 * 8 * 4 * 2);
  EXPECT_LT(ms, 1000) << "generous for sanitizer builds; a release build takes a few ms";
  EXPECT_EQ(t.shortest_hops(0, 2047), 8);
}

TEST(Topology, SpecsAreValidatedWhenBuiltInCode) {
  ClusterSpec c = load_cluster("hgx-h200");
  c.nics_per_node = 9;
  EXPECT_THROW(Topology{c}, Error);
}

TEST(Topology, MovesKeepTheGraph) {
  Topology a(load_cluster("hgx-h200"));
  Topology b = std::move(a);
  EXPECT_EQ(b.spec().name, "hgx-h200");
  EXPECT_EQ(b.route(0, 1).size(), 2u);
}

}  // namespace
}  // namespace pipesim
