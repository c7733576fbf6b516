// The engine against a brute-force earliest-start list scheduler: a separate, slow, obviously-correct
// implementation that sweeps the ranks until every action has a start time. It keeps its own cost numbers
// and does its own arithmetic (no pipesim cost lookup), so a default shared by both cannot hide a bug.
// Hundreds of random small schedules (random legal orders, split and fused backwards, forwards overlapped
// with a B or an I, loop and V placements with one, two or three stages per rank) with random costs,
// slowdowns, latencies and bandwidths: every compute span and every transfer must match to the
// nanosecond, and every rank's peak activation bytes exactly.
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
// Stages loop over the ranks stages_per_rank times, or form the V.
Schedule random_schedule(std::mt19937& rng, int p, int m, bool v_shape, int stages_per_rank) {
  GeneratorOptions o{p, m, 2};
  auto s = start_schedule("random", o, v_shape ? v_layout(p) : loop_layout(p, stages_per_rank * p));
  std::map<std::tuple<Op, int, int>, bool> done;
  std::uniform_int_distribution<int> coin(0, 99);
  auto is_done = [&](Op op, int st, int mb) { return done.count({op, st, mb}) > 0; };
  auto backward_done = [&](int st, int mb) { return is_done(Op::I, st, mb) || is_done(Op::B, st, mb); };
  auto route = s.routes[0];
  // Every (stage, micro-batch) counts F once and its backward once (B, or W after I).
  int total = 0, target = static_cast<int>(route.size()) * 2 * m;
  std::vector<bool> split(static_cast<std::size_t>(s.stages * m));
  for (auto&& b : split) b = coin(rng) < 50;
  auto counts = [](Op op) { return op == Op::I ? 0 : 1; };
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
    // Sometimes pair a forward with a ready backward (B or I) of another stage, as DualPipe does.
    if (pick.op == Op::F && coin(rng) < 30) {
      for (auto& other : ready)
        if (is_backward(other.op) && other.stage != pick.stage) {
          program.push_back(Action::overlap(pick, other));
          done[{Op::F, int{pick.stage}, pick.microbatch}] = done[{Op{other.op}, int{other.stage}, other.microbatch}] = true;
          total += counts(Op::F) + counts(other.op);
          pick.op = Op::OverlapFB;
          break;
        }
    }
    if (pick.op == Op::OverlapFB) continue;
    program.push_back(Action::single(pick.op, pick.stage, pick.microbatch));
    done[{Op{pick.op}, int{pick.stage}, pick.microbatch}] = true;
    total += counts(pick.op);
  }
  return s;
}

// The test's own cost numbers, in plain integers and doubles.
struct StageNumbers {
  std::int64_t F = 0, I = 0, W = 0, B = 0;
  std::int64_t FB = 0;  // this stage's forward overlapped with a full backward of `partner`
  int partner = -1;     // the other stage on the rank; itself when alone; -1 with three or more
  std::int64_t bytes = 0, memory = 0, memory_w = 0;
};

struct Link {
  std::int64_t latency = 0;
  double bandwidth = 0;  // bytes per ns; 0: unlimited
};

struct Numbers {
  std::vector<StageNumbers> stages;
  std::vector<double> slowdown;  // [rank]
  std::vector<Link> links;       // [src * ranks + dst]
  bool per_link = false;         // links differ (else all are one shared link)
};

Numbers random_numbers(std::mt19937& rng, const Schedule& s) {
  auto uniform = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  auto chance = [&](int percent) { return std::uniform_int_distribution<int>(0, 99)(rng) < percent; };
  Numbers n;
  n.stages.resize(static_cast<std::size_t>(s.stages));
  for (int st = 0; st < s.stages; ++st) {
    auto& c = n.stages[static_cast<std::size_t>(st)];
    c.F = uniform(1, 5000), c.I = uniform(1, 5000), c.W = uniform(1, 5000);
    c.B = chance(50) ? c.I + c.W : uniform(1, 9000);
    c.bytes = chance(10) ? 0 : uniform(1, 100000);
    c.memory = uniform(0, 1'000'000);
    c.memory_w = uniform(0, c.memory);
    std::vector<int> mates;
    for (int other = 0; other < s.stages; ++other)
      if (s.stage_to_rank[static_cast<std::size_t>(other)] == s.stage_to_rank[static_cast<std::size_t>(st)])
        mates.push_back(other);
    c.partner = mates.size() == 1 ? st : mates.size() == 2 ? mates[mates[0] == st ? 1 : 0] : -1;
  }
  // FB after every B is known: given, or the halves back to back, F here and B of the partner.
  for (auto& c : n.stages) {
    bool halves = c.partner >= 0 && chance(50);
    c.FB = halves ? c.F + n.stages[static_cast<std::size_t>(c.partner)].B : uniform(1, 12000);
  }
  for (int r = 0; r < s.ranks; ++r)
    n.slowdown.push_back(chance(25) ? 1.37 : chance(15) ? std::uniform_real_distribution<double>(1, 2)(rng) : 1.0);
  // One link model for every pair, or a different one for each direction.
  n.per_link = chance(50);
  Link shared{uniform(0, 3000), chance(20) ? 0.0 : std::uniform_real_distribution<double>(5, 100)(rng)};
  for (int k = 0; k < s.ranks * s.ranks; ++k)
    n.links.push_back(n.per_link ? Link{uniform(0, 3000), chance(20) ? 0.0 : std::uniform_real_distribution<double>(5, 100)(rng)}
                               : shared);
  return n;
}

// The engine's costs from the numbers, every field given.
Costs to_costs(const Numbers& n) {
  Costs c;
  for (auto& in : n.stages) {
    StageCost out;
    out.F_ns = in.F;
    out.I_ns = in.I;
    out.W_ns = in.W;
    out.B_ns = in.B;
    out.FB_ns = in.FB;
    out.pair_partner = in.partner;
    out.activation_bytes = in.bytes;
    out.activation_memory = in.memory;
    out.activation_memory_w = in.memory_w;
    c.stages.push_back(out);
  }
  c.rank_slowdown = n.slowdown;
  c.p2p = {n.links[0].latency, n.links[0].bandwidth};
  if (n.per_link)
    for (auto& l : n.links) c.rank_links.push_back({l.latency, l.bandwidth});
  c.w_memory_fraction = 0.25;  // memory units only; bytes come from activation_memory_w
  return c;
}

// What a compute action takes on rank r: its base time times the rank's slowdown, rounded to nearest. An
// overlapped pair costs FB when its backward half is the full B of the forward's partner, else its halves.
std::int64_t duration(const Numbers& n, const Action& a, int r) {
  auto& f = n.stages[static_cast<std::size_t>(a.stage())];
  std::int64_t base = 0;
  switch (a.op) {
    case Op::F: base = f.F; break;
    case Op::I: base = f.I; break;
    case Op::W: base = f.W; break;
    case Op::B: base = f.B; break;
    case Op::OverlapFB: {
      auto& back = n.stages[static_cast<std::size_t>(a.pass[1].stage)];
      if (a.pass[1].op == Op::B) base = a.pass[1].stage == f.partner ? f.FB : f.F + back.B;
      else base = f.F + back.I;
      break;
    }
    default: ADD_FAILURE() << "not a compute action: " << to_string(a);
  }
  return std::llround(static_cast<double>(base) * n.slowdown[static_cast<std::size_t>(r)]);
}

struct Timed {
  std::int64_t start = -1, end = -1;
};

struct BruteForce {
  std::map<std::pair<int, std::string>, Timed> compute;  // (rank, action) -> span
  std::map<std::pair<int, std::string>, Timed> sends;    // (rank, SEND) -> posted, arrival
  std::vector<std::int64_t> peak_bytes;                  // [rank]
  std::int64_t makespan = 0;
};

// Sweep ranks in order, start each next action at the earliest moment its rank is free and its data has
// arrived, until nothing is left. Links serve transfers in the order they are posted: serialisation
// waits for the link to be free, latency overlaps the next message.
BruteForce brute_force(const Schedule& s, const Numbers& n) {
  BruteForce out;
  std::map<std::tuple<Op, int, int>, std::int64_t> arrival;  // RECV (op, stage, mb) -> data arrival
  std::map<std::pair<int, int>, std::int64_t> link_free;
  std::vector<std::size_t> next(static_cast<std::size_t>(s.ranks), 0);
  std::vector<std::int64_t> free_at(static_cast<std::size_t>(s.ranks), 0);
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
        auto& link = n.links[static_cast<std::size_t>(r * s.ranks + peer)];
        auto bytes = n.stages[static_cast<std::size_t>(a.stage())].bytes;
        std::int64_t serialise =
            bytes == 0 || link.bandwidth == 0 ? 0 : std::llround(static_cast<double>(bytes) / link.bandwidth);
        auto& lf = link_free[{r, peer}];
        auto start = std::max(t, lf);
        lf = start + serialise;
        auto arrives = start + serialise + link.latency;
        arrival[{a.op == Op::SendF ? Op::RecvF : Op::RecvB, peer_stage, a.microbatch()}] = arrives;
        out.sends[{r, to_string(a)}] = {t, arrives};
        out.makespan = std::max(out.makespan, arrives);
        timed = {t, t};
      } else {
        timed = {t, t + duration(n, a, r)};
        out.compute[{r, to_string(a)}] = timed;
      }
      free_at[static_cast<std::size_t>(r)] = timed.end;
      out.makespan = std::max(out.makespan, timed.end);
      ++k;
      progress = true;
    }
  }
  for (int r = 0; r < s.ranks; ++r)
    EXPECT_EQ(next[static_cast<std::size_t>(r)], s.programs[static_cast<std::size_t>(r)].size()) << "stuck on rank " << r;
  // Memory follows program order alone: forwards allocate as an action starts, backwards free as it ends.
  out.peak_bytes.assign(static_cast<std::size_t>(s.ranks), 0);
  for (int r = 0; r < s.ranks; ++r) {
    std::int64_t live = 0;
    for (auto& a : s.programs[static_cast<std::size_t>(r)]) {
      if (!a.is_compute()) continue;
      for (auto& pass : a.passes())
        if (pass.op == Op::F) live += n.stages[static_cast<std::size_t>(pass.stage)].memory;
      out.peak_bytes[static_cast<std::size_t>(r)] = std::max(out.peak_bytes[static_cast<std::size_t>(r)], live);
      for (auto& pass : a.passes()) {
        auto& c = n.stages[static_cast<std::size_t>(pass.stage)];
        if (pass.op == Op::B) live -= c.memory;
        if (pass.op == Op::I) live -= c.memory - c.memory_w;
        if (pass.op == Op::W) live -= c.memory_w;
      }
    }
    EXPECT_EQ(live, 0) << "rank " << r << " ends holding activations";
  }
  return out;
}

TEST(BruteForce, EngineMatchesListSchedulerOnRandomSchedules) {
  std::mt19937 rng(2024);
  int cases = 0, pairs = 0, pairs_with_i = 0, fb_pairs = 0;
  for (int trial = 0; trial < 1000; ++trial) {
    int p = std::uniform_int_distribution<int>(1, 5)(rng);
    int m = std::uniform_int_distribution<int>(1, 8)(rng);
    Schedule s;
    if (trial % 4 == 0) {  // registry schedules too, at random legal sizes
      auto& info = schedule_registry()[static_cast<std::size_t>(trial / 4) % schedule_registry().size()];
      try {
        s = info.generate({p, std::max(m, 2 * p) + (p % 2), 2});
      } catch (const Error&) {
        continue;
      }
    } else {
      s = random_schedule(rng, p, m, trial % 4 == 1, 1 + (trial / 4) % 3);
    }
    ASSERT_NO_THROW(validate(s)) << to_text(s);
    auto numbers = random_numbers(rng, s);
    auto lowered = lower(s);
    auto timeline = simulate_lowered(std::make_shared<const Schedule>(lowered), to_costs(numbers));
    auto want = brute_force(lowered, numbers);
    auto metrics = compute_metrics(timeline);
    ASSERT_EQ(metrics.makespan_ns, want.makespan) << to_text(s);

    std::size_t compute_spans = 0, send_spans = 0;
    for (auto& span : timeline.spans) {
      std::pair<int, std::string> key{span.rank, to_string(span.action)};
      if (span.stream == Stream::Compute && span.action.is_compute()) {
        ++compute_spans;
        auto it = want.compute.find(key);
        ASSERT_NE(it, want.compute.end()) << key.second << " on rank " << key.first;
        ASSERT_EQ(span.start_ns, it->second.start) << key.second << " on rank " << key.first << "\n" << to_text(s);
        ASSERT_EQ(span.end_ns, it->second.end) << key.second << " on rank " << key.first << "\n" << to_text(s);
        if (span.action.op == Op::OverlapFB) {
          ++pairs;
          pairs_with_i += span.action.pass[1].op == Op::I;
          fb_pairs += span.action.pass[1].op == Op::B &&
                      span.action.pass[1].stage == numbers.stages[static_cast<std::size_t>(span.action.stage())].partner;
        }
      } else if (span.stream == Stream::P2P) {
        ++send_spans;
        auto it = want.sends.find(key);
        ASSERT_NE(it, want.sends.end()) << key.second << " on rank " << key.first;
        ASSERT_EQ(span.start_ns, it->second.start) << key.second << " on rank " << key.first;
        ASSERT_EQ(span.end_ns, it->second.end) << key.second << " on rank " << key.first << "\n" << to_text(s);
      }
    }
    ASSERT_EQ(compute_spans, want.compute.size());
    ASSERT_EQ(send_spans, want.sends.size());
    for (int r = 0; r < s.ranks; ++r)
      ASSERT_EQ(metrics.ranks[static_cast<std::size_t>(r)].peak_activation_bytes,
                static_cast<double>(want.peak_bytes[static_cast<std::size_t>(r)]))
          << "rank " << r << "\n" << to_text(s);
    ++cases;
  }
  EXPECT_GT(cases, 900);
  // The cases the cost rules distinguish all occurred.
  EXPECT_GT(pairs_with_i, 100);
  EXPECT_GT(fb_pairs, 100);
  EXPECT_GT(pairs - pairs_with_i - fb_pairs, 50) << "pairs of F with a B that is not the partner's";
}

}  // namespace
}  // namespace pipesim
