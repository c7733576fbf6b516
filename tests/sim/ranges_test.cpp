// Arithmetic that cannot overflow silently: every duration, slowdown and link is range-checked where costs
// enter (resolve_costs), and the engine's own sums are checked, so inputs that would leave 64-bit
// nanoseconds are refused with their name (exit 2) instead of becoming negative times.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/error.hpp"
#include "common/units.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "sim/costs.hpp"
#include "sim/engine.hpp"

namespace pipesim {
namespace {

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::Input) << e.what();
    return e.what();
  }
  return "accepted";
}

TEST(Ranges, EveryActionAtTheLimitStillOverflowsALongEnoughSchedule) {
  // 1F1B, 2 ranks, 4096 micro-batches: F + I + W = 3e15 ns each, 1.2e19 ns in a row > 2^63 - 1 (9.2e18).
  auto s = lower(generate_schedule("1f1b", {2, 4096, 2}));
  auto costs = uniform_costs("F=1000000s,I=1000000s,W=1000000s", s.stages, s.ranks);
  EXPECT_EQ(refusal([&] { simulate(s, costs); }),
            "simulation: the timeline runs past 2^63 ns (292 years); the costs are too large for this schedule");
  // A thousand times shorter fits, and the makespan is exact: (m + p - 1)(F + B) for 1F1B with no links.
  auto fine = uniform_costs("F=1000s,I=1000s,W=1000s", s.stages, s.ranks);
  auto timeline = simulate(s, fine);
  std::int64_t makespan = 0;
  for (auto& span : timeline.spans) makespan = std::max(makespan, span.end_ns);
  EXPECT_EQ(makespan, (4096 + 1) * 3000LL * 1'000'000'000);
}

TEST(Ranges, SlowdownsAndLinksAreRefusedByName) {
  auto s = lower(generate_schedule("1f1b", {2, 4, 2}));
  auto costs = uniform_costs("F=1ms,I=1ms,W=1ms", s.stages, s.ranks);
  auto slow = costs;
  slow.rank_slowdown[1] = 1e300;
  EXPECT_EQ(refusal([&] { resolve_costs(slow, s); }), "ranks.1.slowdown is 1e+300; it must be a factor in (0, 1e6]");
  slow.rank_slowdown[1] = 1e6;  // allowed, but 1 ms x 1e6 = 1000 s: fine; 1e4 s x 1e6 is not
  EXPECT_NO_THROW(resolve_costs(slow, s));
  slow.stages[0].F_ns = 10'000'000'000'000;  // 1e4 s
  EXPECT_NE(refusal([&] { resolve_costs(slow, s); }).find("stage 0: F takes 1e+10 s (slowed down by up to 1e+06)"),
            std::string::npos);
  auto link = costs;
  link.stages[0].activation_bytes = 1'000'000;
  link.p2p = {0, 1e-300};
  EXPECT_EQ(refusal([&] { resolve_costs(link, s); }),
            "p2p: bandwidth 1e-300 GB/s moves a 1e+06-byte activation in more than 1e6 s");
  link.p2p = {kMaxActionNs + 1, 1};
  EXPECT_NE(refusal([&] { resolve_costs(link, s); }).find("p2p: latency"), std::string::npos);
}

}  // namespace
}  // namespace pipesim
