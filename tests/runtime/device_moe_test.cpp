// DeviceMoe, the MoE layer the CUDA stage runs (index plans, gathers, chunked GEMMs), run here on host
// memory against MoeMlp, the CPU stage's layer: the same outputs and input gradients bit for bit, weight
// gradients too on one EP rank (to 1e-13 on two, where they sum chunk by chunk), with a router that leaves
// one EP rank without rows, and the same operators' work (GEMM FLOPs by pass, all-to-all bytes).
#include "runtime/device_moe.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/numeric.hpp"
#include "runtime/moe_mlp.hpp"
#include "runtime/op_log.hpp"
#include "tests/runtime/thread_all_to_all.hpp"

namespace pipesim {
namespace {

using Moe = DeviceMoe<HostMoeOps<double>>;

const WorkloadSpec kSpec{.layers = 1,
                         .hidden = 12,
                         .heads = 2,
                         .seq = 7,
                         .micro_batch = 2,
                         .seed = 5,
                         .experts = 4,
                         .experts_per_token = 2,
                         .expert_ffn = 10};

std::vector<double> random_vector(std::size_t size, std::uint64_t seed, double low = -1, double high = 1) {
  std::mt19937_64 gen(seed);
  std::vector<double> v(size);
  for (auto& x : v) x = low + (high - low) * double(gen() >> 11) * 0x1p-53;
  return v;
}

// Work by (kind, pass): GEMM FLOPs and exchanged bytes.
std::map<std::string, double> work_of(HostOpLog& log) {
  std::map<std::string, double> work;
  for (auto& k : log.take(0, HostOpLog::Clock::now())) {
    if (k.work.kind == OpKind::Gemm) work[std::string("gemm ") + k.work.pass] += k.work.flops;
    if (k.work.kind == OpKind::Comm) {
      work[std::string("a2a bytes ") + k.work.pass] += k.work.bytes;
      work[std::string("a2a count ") + k.work.pass] += 1;
    }
  }
  return work;
}

struct RankResult {
  std::vector<std::vector<double>> y, dx;  // per micro-batch
  std::vector<std::vector<double>> grads;  // router, then each local expert's w_gate, w_up, w_down
  std::map<std::string, double> work;
};

// One EP rank: two micro-batches F0 F1 I0 W0 I1 W1 through MoeMlp (`device` false) or DeviceMoe.
// `skew`: positive inputs and a router preferring experts 0 and 1, so EP rank 1 of 2 gets no rows.
RankResult run_rank(WorkloadSpec spec, AllToAll<double> exchange, bool device, bool skew) {
  const std::size_t R = std::size_t(spec.micro_batch * spec.seq), H = std::size_t(spec.hidden);
  MoeMlp<double> reference(spec, exchange, "reference");
  auto params = reference.init(0);
  if (skew)
    for (std::size_t i = 0; i < params.router.size(); ++i) params.router[i] = i % 4 < 2 ? 1.0 + double(i % 7) : -1.0;
  auto grads = params;
  grads.router.assign(grads.router.size(), 0.0);
  for (auto& e : grads.experts)
    for (auto* t : {&e.w_gate, &e.w_up, &e.w_down}) t->assign(t->size(), 0.0);
  std::vector<std::vector<double>> x, dy;
  for (int mb = 0; mb < 2; ++mb) {
    auto seed = std::uint64_t(100 * spec.ep_rank + 10 * mb);
    x.push_back(skew ? random_vector(R * H, seed, 0.1, 1) : random_vector(R * H, seed));
    dy.push_back(random_vector(R * H, seed + 1));
  }
  HostOpLog log;
  RankResult out;
  out.y.resize(2);
  out.dx.resize(2);
  if (!device) {
    reference.set_op_log(&log);
    std::vector<MoeMlp<double>::Saved> saved(2);
    for (int mb : {0, 1}) out.y[std::size_t(mb)] = reference.forward(params, x[std::size_t(mb)], saved[std::size_t(mb)]);
    for (int mb : {0, 1}) {
      out.dx[std::size_t(mb)] = reference.backward_input(params, dy[std::size_t(mb)], saved[std::size_t(mb)]);
      reference.backward_weight(saved[std::size_t(mb)], x[std::size_t(mb)], grads);
    }
  } else {
    Moe moe(spec, exchange, "device", {}, &log);
    Moe::Weights w{params.router.data(), {}, {}, {}};
    Moe::Grads g{grads.router.data(), {}, {}, {}};
    for (std::size_t i = 0; i < params.experts.size(); ++i) {
      w.w_gate.push_back(params.experts[i].w_gate.data());
      w.w_up.push_back(params.experts[i].w_up.data());
      w.w_down.push_back(params.experts[i].w_down.data());
      g.w_gate.push_back(grads.experts[i].w_gate.data());
      g.w_up.push_back(grads.experts[i].w_up.data());
      g.w_down.push_back(grads.experts[i].w_down.data());
    }
    std::vector<Moe::Saved> saved(2);
    for (int mb : {0, 1}) out.y[std::size_t(mb)] = moe.forward(w, x[std::size_t(mb)].data(), saved[std::size_t(mb)]);
    for (int mb : {0, 1}) {
      out.dx[std::size_t(mb)] = moe.backward_input(w, dy[std::size_t(mb)].data(), saved[std::size_t(mb)]);
      moe.backward_weight(saved[std::size_t(mb)], x[std::size_t(mb)].data(), g);
    }
  }
  out.grads.push_back(grads.router);
  for (auto& e : grads.experts)
    for (auto* t : {&e.w_gate, &e.w_up, &e.w_down}) out.grads.push_back(*t);
  out.work = work_of(log);
  return out;
}

// Every EP rank of `ep` in its own thread, through one implementation.
std::vector<RankResult> run_ep(int ep, bool device, bool skew) {
  ThreadAllToAll<double> all_to_all(ep);
  std::vector<RankResult> results(std::size_t(ep), RankResult{});
  std::vector<std::string> failures(static_cast<std::size_t>(ep));
  std::vector<std::thread> threads;
  for (int r = 0; r < ep; ++r)
    threads.emplace_back([&, r] {
      WorkloadSpec spec = kSpec;
      spec.ep = ep;
      spec.ep_rank = r;
      try {
        results[std::size_t(r)] = run_rank(spec, ep > 1 ? all_to_all.rank(r) : AllToAll<double>{}, device, skew);
      } catch (const std::exception& e) {
        failures[std::size_t(r)] = e.what();
        all_to_all.leave();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < ep; ++r) EXPECT_EQ(failures[std::size_t(r)], "") << "EP rank " << r;
  return results;
}

void expect_same(int ep, bool skew) {
  auto want = run_ep(ep, false, skew), got = run_ep(ep, true, skew);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t r = 0; r < got.size(); ++r) {
    SCOPED_TRACE("EP rank " + std::to_string(r));
    EXPECT_EQ(got[r].y, want[r].y);
    EXPECT_EQ(got[r].dx, want[r].dx);
    if (ep == 1) {
      EXPECT_EQ(got[r].grads, want[r].grads);
    } else {  // an expert's weight gradient sums its sources' chunks, MoeMlp all its rows at once
      ASSERT_EQ(got[r].grads.size(), want[r].grads.size());
      for (std::size_t t = 0; t < got[r].grads.size(); ++t)
        EXPECT_LT(relative_error(got[r].grads[t], want[r].grads[t]), 1e-13) << "tensor " << t;
    }
    EXPECT_EQ(got[r].work, want[r].work);
    EXPECT_GT(got[r].work["gemm F"], 0);
    EXPECT_EQ(got[r].work["a2a count F"], 4);  // dispatch and combine, two micro-batches
    EXPECT_EQ(got[r].work["a2a count I"], 4);
  }
}

TEST(DeviceMoe, OneEpRankGivesMoeMlpsBits) { expect_same(1, false); }

TEST(DeviceMoe, TwoEpRanksGiveMoeMlpsOutputsBitForBit) { expect_same(2, false); }

TEST(DeviceMoe, AnEpRankWithoutRowsStillTakesPart) {
  expect_same(2, true);
  auto got = run_ep(2, true, true);
  // Rank 1 holds experts 2 and 3, which no token chose: its experts' gradients stay zero, its GEMMs are the
  // router's alone, and it still sends its tokens' rows to rank 0.
  for (std::size_t t = 1; t < got[1].grads.size(); ++t)
    EXPECT_EQ(got[1].grads[t], std::vector<double>(got[1].grads[t].size(), 0.0)) << "tensor " << t;
  const double R = kSpec.micro_batch * kSpec.seq, H = kSpec.hidden, E = kSpec.experts;
  EXPECT_EQ(got[1].work["gemm F"], 2 * 2 * R * H * E);  // two micro-batches of the router's forward
  EXPECT_GT(got[1].work["a2a bytes F"], 0);
}

}  // namespace
}  // namespace pipesim
