// The Chrome trace: a golden file for a small hand-checkable case (1F1B, 2 ranks, 2 micro-batches, 64 MiB
// at 50 GB/s + 20 us: each transfer takes 1.362177 ms), and structural checks on larger ones: valid JSON,
// every slice has ts/dur in microseconds, every flow start has its end, slices on a thread nest.
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "schedules/registry.hpp"
#include "sim/engine.hpp"
#include "traces/chrome_trace.hpp"

namespace pipesim {
namespace {

CostSpec costs_for(const Schedule& s, std::int64_t latency_ns, double gbps, std::int64_t bytes) {
  auto c = uniform_costs("F=1ms,I=1ms,W=0.5ms", s.stages, s.ranks);
  c.p2p.latency_ns = latency_ns;
  c.p2p.bandwidth_bytes_per_ns = gbps;
  for (auto& st : c.stages) {
    st.activation_bytes = bytes;
    st.activation_memory = 1 << 30;
  }
  return c;
}

TEST(ChromeTrace, GoldenSmallCase) {
  auto s = generate_schedule("1f1b", {2, 2, 2});
  auto trace = to_chrome_trace(simulate(s, costs_for(s, 20'000, 50.0, 64 << 20)));
  std::ifstream in(std::string(PIPESIM_GOLDEN_DIR) + "/1f1b_p2_m2_trace.json");
  std::ostringstream golden;
  golden << in.rdbuf();
  EXPECT_EQ(trace, golden.str());
}

TEST(ChromeTrace, WellFormedAndDeterministic) {
  for (auto [name, p, m] : {std::tuple{"dualpipe", 8, 20}, {"zb-v", 4, 12}, {"interleaved-1f1b", 4, 8}}) {
    auto s = generate_schedule(name, {p, m, 2});
    auto c = costs_for(s, 30'000, 20.0, 16 << 20);
    c.stages[0].FB_ns = 1'800'000;
    auto trace = to_chrome_trace(simulate(s, c));
    EXPECT_EQ(trace, to_chrome_trace(simulate(s, c))) << "not byte-identical";
    auto json = nlohmann::json::parse(trace);
    ASSERT_TRUE(json["traceEvents"].is_array());
    std::map<long, int> flows;  // id -> +1 start, -1 end
    std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> slices;
    std::set<std::pair<int, int>> named_threads;
    int overlapped = 0;
    for (auto& e : json["traceEvents"]) {
      auto ph = e["ph"].get<std::string>();
      if (ph == "X") {
        ASSERT_TRUE(e["ts"].is_number() && e["dur"].is_number()) << e.dump();
        ASSERT_GE(e["dur"].get<double>(), 0.0);
        slices[{e["pid"].get<int>(), e["tid"].get<int>()}].push_back({e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>()});
        if (e["args"].value("op", "") == "OVERLAP_F_B") ++overlapped;
      } else if (ph == "s") {
        flows[e["id"].get<long>()] += 1;
      } else if (ph == "f") {
        EXPECT_EQ(e["bp"], "e");
        flows[e["id"].get<long>()] -= 1;
      } else if (ph == "M" && e["name"] == "thread_name") {
        named_threads.insert({e["pid"].get<int>(), e["tid"].get<int>()});
      }
    }
    for (auto& [id, balance] : flows) EXPECT_EQ(balance, 0) << "flow " << id << " lacks its start or end";
    EXPECT_FALSE(flows.empty());
    for (auto& [thread, list] : slices) {
      EXPECT_TRUE(named_threads.count(thread)) << "unnamed thread";
      std::sort(list.begin(), list.end());
      for (std::size_t i = 1; i < list.size(); ++i)
        EXPECT_LE(list[i - 1].second, list[i].first + 1e-9) << name << ": slices overlap on pid/tid " << thread.first
                                                            << "/" << thread.second;
    }
    if (std::string(name) == "dualpipe") {
      EXPECT_GT(overlapped, 50);
    }
  }
}

// EP spans name the action they run inside; DP spans (gradient reduce-scatter, optimizer, all-gather) run
// after the pipeline and belong to no action, so they carry none (they used to show as "during":"0F0").
// Measured GPU kernels get one lane per rank and stream ("GPU stream 7", thread id 1000 + stream), with
// their names escaped for JSON; the trace still parses.
TEST(ChromeTrace, KernelLanesPerRankAndStream) {
  auto s = generate_schedule("1f1b", {2, 2, 2});
  auto t = simulate(s, costs_for(s, 0, 0, 0));
  t.kernels = {{0, 7, "void gemm<128, \"x\">(float const*)", 1000, 3500, 0, -1, {}}, {1, 9, "memcpy HtoD", 2000, 2100, 64, -1, {}}};
  auto j = nlohmann::json::parse(to_chrome_trace(t));
  int lanes = 0, kernels = 0;
  for (auto& e : j["traceEvents"]) {
    if (e["name"] == "thread_name" && e["args"]["name"].get<std::string>().rfind("GPU stream", 0) == 0) {
      ++lanes;
      EXPECT_EQ(e["tid"].get<int>(), 1000 + (e["pid"].get<int>() == 0 ? 7 : 9));
    }
    if (e.value("cat", "") == "gpu") {
      ++kernels;
      if (e["pid"] == 0) {
        EXPECT_EQ(e["name"], "void gemm<128, \"x\">(float const*)");
        EXPECT_EQ(e["ts"].get<double>(), 1.0);
        EXPECT_EQ(e["dur"].get<double>(), 2.5);
      } else {
        EXPECT_EQ(e["args"]["bytes"], 64);
      }
    }
  }
  EXPECT_EQ(lanes, 2);
  EXPECT_EQ(kernels, 2);
}

TEST(ChromeTrace, DataParallelSpansNameNoAction) {
  auto s = generate_schedule("1f1b", {2, 2, 2});
  auto t = simulate(s, costs_for(s, 0, 0, 0));
  t.spans.push_back({0, Stream::EP, Action::single(Op::F, 0, 1), 100, 200, 0, -1, -1, "dispatch + combine"});
  t.spans.push_back({1, Stream::DP, Action{}, 5'000'000, 6'000'000, 0, -1, -1, "optimizer step"});
  auto json = nlohmann::json::parse(to_chrome_trace(t));
  int ep = 0, dp = 0;
  for (auto& e : json["traceEvents"]) {
    if (e.value("cat", "") == "ep") {
      ++ep;
      EXPECT_EQ(e["args"]["during"], "0F1");
    }
    if (e.value("cat", "") == "dp") {
      ++dp;
      EXPECT_EQ(e["name"], "optimizer step");
      EXPECT_FALSE(e["args"].contains("during")) << e.dump();
    }
  }
  EXPECT_EQ(ep, 1);
  EXPECT_EQ(dp, 1);
}

}  // namespace
}  // namespace pipesim
