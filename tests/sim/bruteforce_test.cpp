// The engine against a brute-force earliest-start list scheduler: a separate, slow, obviously-correct
// implementation that sweeps the ranks until every action has a start time. Hundreds of random small
// schedules (random legal orders, split and fused backwards, overlapped pairs, loop and V placements)
// with random costs, slowdowns, latencies and bandwidths; every compute span must match to the nanosecond.
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"
#include "sim/engine.hpp"
#include "traces/metrics.hpp"

namespace pipesim {
namespace {

// A random legal schedule: repeatedly pick a random rank and append a random pass whose inputs are done.
Schedule random_schedule(std::mt19937& rng, int p, int m, bool v_shape) {
  GeneratorOptions o{p, m, 2};
  auto s = start_schedule("random", o, v_shape ? 2 * p : p, v_shape ? v_placement(p) : loop_placement(p, p));
  std::map<std::tuple<Op, int, int>, bool> done;
  std::vector<std::pair<int, int>> next_forward;  // (microbatch, position on route) per micro-batch
  std::uniform_int_distribution<int> coin(0, 99);
  auto is_done = [&](Op op, int st, int mb) { return done.count({op, st, mb}) > 0; };
  auto backward_done = [&](int st, int mb) { return is_done(Op::I, st, mb) || is_done(Op::B, st, mb); };
  auto route = s.routes[0];
  int total = 0, target = 0;
  for (int mb = 0; mb < m; ++mb) target += static_cast<int>(route.size()) * 2;
  std::vector<bool> split(static_cast<std::size_t>(s.stages * m));
  for (auto&& b : split) b = coin(rng) < 50;
  std::vector<std::vector<Pass>> pending_w(static_cast<std::size_t>(p));
  while (total < target) {
    int r = std::uniform_int_distribution<int>(0, p - 1)(rng);
    std::vector<Pass> ready;
    for (int mb = 0; mb < m; ++mb)
      for (std::size_t k = 0; k < route.size(); ++k) {
        int st = route[k];
        if (s.stage_to_rank[static_cast<std::size_t>(st)] != r) continue;
        if (!is_done(Op::F, st, mb) && (k == 0 || is_done(Op::F, route[k - 1], mb))) ready.push_back({Op::F, st, mb});
        if (is_done(Op::F, st, mb) && !backward_done(st, mb) && (k + 1 == route.size() || backward_done(route[k + 1], mb)))
          ready.push_back({split[static_cast<std::size_t>(st * m + mb)] ? Op::I : Op::B, st, mb});
        if (is_done(Op::I, st, mb) && !is_done(Op::W, st, mb)) ready.push_back({Op::W, st, mb});
      }
    if (ready.empty()) continue;
    auto pick = ready[std::uniform_int_distribution<std::size_t>(0, ready.size() - 1)(rng)];
    auto& program = s.programs[static_cast<std::size_t>(r)];
    // Sometimes pair a forward with a ready full backward of another stage, as DualPipe does.
    if (pick.op == Op::F && coin(rng) < 30) {
      for (auto& other : ready)
        if (other.op == Op::B && other.stage != pick.stage) {
          program.push_back(Action::overlap(pick, other));
          done[{Op::F, pick.stage, pick.microbatch}] = done[{Op::B, other.stage, other.microbatch}] = true;
          total += 2;
          pick.op = Op::OverlapFB;
          break;
        }
    }
    if (pick.op == Op::OverlapFB) continue;
    program.push_back(Action::single(pick.op, pick.stage, pick.microbatch));
    done[{pick.op, pick.stage, pick.microbatch}] = true;
    total += pick.op == Op::I ? 0 : 1;  // I and W count as one backward
  }
  return s;
}

struct Timed {
  std::int64_t start = -1, end = -1;
};

// Brute force: sweep ranks in order, start each next action at the earliest moment its rank is free and
// its data has arrived, until nothing is left. Links serve transfers in the order they are posted.
std::map<std::pair<int, std::size_t>, Timed> brute_force(const Schedule& s, const Costs& c, std::int64_t& makespan) {
  std::map<std::pair<int, std::size_t>, Timed> times;
  std::map<std::tuple<Op, int, int>, std::int64_t> arrival;  // RECV (op, stage, mb) -> data arrival
  std::map<std::pair<int, int>, std::int64_t> link_free;
  std::vector<std::size_t> next(static_cast<std::size_t>(s.ranks), 0);
  std::vector<std::int64_t> free_at(static_cast<std::size_t>(s.ranks), 0);
  makespan = 0;
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < s.ranks; ++r) {
      auto& program = s.programs[static_cast<std::size_t>(r)];
      auto& k = next[static_cast<std::size_t>(r)];
      if (k >= program.size()) continue;
      auto& a = program[k];
      auto t = free_at[static_cast<std::size_t>(r)];
      Timed timed;
      if (a.op == Op::RecvF || a.op == Op::RecvB) {
        auto it = arrival.find({a.op, a.stage(), a.microbatch()});
        if (it == arrival.end()) continue;
        timed = {t, std::max(t, it->second)};
      } else if (a.op == Op::SendF || a.op == Op::SendB) {
        auto& route = s.route(a.microbatch());
        std::size_t pos = 0;
        while (route[pos] != a.stage()) ++pos;
        int peer_stage = a.op == Op::SendF ? route[pos + 1] : route[pos - 1];
        int peer = s.stage_to_rank[static_cast<std::size_t>(peer_stage)];
        auto bytes = c.stages[static_cast<std::size_t>(a.stage())].activation_bytes;
        auto serialise = bytes == 0 || c.p2p.bandwidth_bytes_per_ns <= 0
                             ? 0
                             : static_cast<std::int64_t>(std::llround(static_cast<double>(bytes) / c.p2p.bandwidth_bytes_per_ns));
        auto& lf = link_free[{r, peer}];
        auto start = std::max(t, lf);
        lf = start + serialise;
        arrival[{a.op == Op::SendF ? Op::RecvF : Op::RecvB, peer_stage, a.microbatch()}] = start + serialise + c.p2p.latency_ns;
        timed = {t, t};
      } else {
        timed = {t, t + c.compute_ns(a, r)};
      }
      times[{r, k}] = timed;
      free_at[static_cast<std::size_t>(r)] = timed.end;
      makespan = std::max(makespan, timed.end);
      ++k;
      progress = true;
    }
  }
  return times;
}

TEST(BruteForce, EngineMatchesListSchedulerOnRandomSchedules) {
  std::mt19937 rng(2024);
  int cases = 0;
  for (int trial = 0; trial < 400; ++trial) {
    int p = std::uniform_int_distribution<int>(1, 4)(rng);
    int m = std::uniform_int_distribution<int>(1, 6)(rng);
    Schedule s;
    if (trial % 4 == 0) {  // registry schedules too, at random legal sizes
      auto& info = schedule_registry()[static_cast<std::size_t>(trial / 4) % schedule_registry().size()];
      try {
        s = info.generate({p, std::max(m, 2 * p) + (p % 2), 2});
      } catch (const Error&) {
        continue;
      }
    } else {
      s = random_schedule(rng, p, m, trial % 3 == 0);
    }
    ASSERT_NO_THROW(validate(s)) << to_text(s);
    std::uniform_int_distribution<std::int64_t> ns(1, 5000);
    Costs c;
    c.stages.resize(static_cast<std::size_t>(s.stages));
    for (auto& st : c.stages) {
      st.F_ns = ns(rng), st.I_ns = ns(rng), st.W_ns = ns(rng);
      st.B_ns = trial % 2 ? -1 : ns(rng);
      st.FB_ns = trial % 3 ? -1 : ns(rng);
      st.activation_bytes = std::uniform_int_distribution<std::int64_t>(0, 100000)(rng);
    }
    for (int r = 0; r < s.ranks; ++r)
      c.rank_slowdown.push_back(std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? 1.37 : 1.0);
    c.p2p.latency_ns = std::uniform_int_distribution<std::int64_t>(0, 3000)(rng);
    c.p2p.bandwidth_bytes_per_ns = trial % 5 == 0 ? 0.0 : std::uniform_real_distribution<double>(5, 100)(rng);

    auto timeline = simulate(s, c);
    auto lowered = lower(s);
    std::int64_t makespan = 0;
    auto expected = brute_force(lowered, c, makespan);
    auto metrics = compute_metrics(timeline);
    ASSERT_EQ(metrics.makespan_ns, makespan) << to_text(s);
    std::map<std::pair<int, std::string>, Timed> got;
    for (auto& span : timeline.spans)
      if (span.stream == Stream::Compute && span.action.is_compute())
        got[{span.rank, to_string(span.action)}] = {span.start_ns, span.end_ns};
    for (auto& [key, want] : expected) {
      auto& a = lowered.programs[static_cast<std::size_t>(key.first)][key.second];
      if (!a.is_compute()) continue;
      auto& have = got[{key.first, to_string(a)}];
      ASSERT_EQ(have.start, want.start) << to_string(a) << " on rank " << key.first << "\n" << to_text(s);
      ASSERT_EQ(have.end, want.end) << to_string(a);
    }
    ++cases;
  }
  EXPECT_GT(cases, 300);
}

}  // namespace
}  // namespace pipesim
