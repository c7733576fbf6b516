// The simulator against the published closed forms, to the nanosecond, under uniform costs and zero
// communication (docs/closed-forms.md), with each formula's stated conditions on F, I, W and m, and the
// published peak activation counts. Idle is makespan minus a rank's busy time.
#include <optional>

#include <gtest/gtest.h>

#include "schedules/registry.hpp"
#include "sim/engine.hpp"
#include "traces/metrics.hpp"

namespace pipesim {
namespace {

struct Ratio {
  std::int64_t F, I, W;
};

Metrics run(const char* name, int p, int m, Ratio c, std::optional<std::int64_t> FB = {}, int v = 2,
            double w_fraction = 0.25) {
  auto s = generate_schedule(name, {p, m, v});
  StageCostSpec stage;
  stage.F_ns = c.F;
  stage.I_ns = c.I;
  stage.W_ns = c.W;
  stage.FB_ns = FB;
  CostSpec costs;
  costs.stages.assign(static_cast<std::size_t>(s.stages), stage);
  costs.rank_slowdown.assign(static_cast<std::size_t>(p), 1.0);
  costs.w_memory_fraction = w_fraction;
  return compute_metrics(simulate(s, costs));
}

// Cost ratios in nanoseconds-scale integers; the conditions of each formula pick among them.
const std::vector<Ratio> kRatios = {{1000, 1000, 1000}, {1000, 1000, 500},  {1200, 1300, 700},
                                    {1000, 2000, 1000}, {3000, 3100, 1000}, {1000, 1500, 200},
                                    {700, 1900, 300},   {1000, 1000, 1}};

TEST(Formulas, OneFOneBAndGPipeIdleIsPMinusOneTimesFPlusB) {
  for (auto c : kRatios)
    for (int p : {1, 2, 3, 4, 6, 8})
      for (int m : {1, 2, p, 2 * p + 1, 4 * p}) {
        for (auto name : {"1f1b", "gpipe"}) {
          auto metrics = run(name, p, m, c);
          for (auto& r : metrics.ranks)
            ASSERT_EQ(r.idle_ns, (p - 1) * (c.F + c.I + c.W)) << name << " p=" << p << " m=" << m << " rank " << r.rank;
          EXPECT_EQ(metrics.makespan_ns, (m + p - 1) * (c.F + c.I + c.W));
        }
      }
}

TEST(Formulas, ZbH1IdleIsPMinusOneTimesFPlusIMinusW) {
  int checked = 0;
  for (auto c : kRatios) {
    if (!(c.W <= c.F && c.W <= c.I)) continue;  // condition: W <= F, W <= I, m >= p
    for (int p : {2, 3, 4, 6, 8})
      for (int m : {p, p + 1, 2 * p, 3 * p + 2}) {
        auto metrics = run("zb-h1", p, m, c);
        for (auto& r : metrics.ranks)
          ASSERT_EQ(r.idle_ns, (p - 1) * (c.F + c.I - c.W)) << "p=" << p << " m=" << m << " rank " << r.rank;
        ++checked;
      }
  }
  EXPECT_GT(checked, 100);
}

TEST(Formulas, ZbH2IdleIsPMinusOneTimesFPlusIMinusTwoW) {
  int checked = 0;
  for (auto c : kRatios) {
    if (!(c.W <= c.F && 2 * c.W <= c.I)) continue;  // condition: W <= F, 2W <= I, m >= 2p-1
    for (int p : {2, 3, 4, 6, 8})
      for (int m : {2 * p - 1, 2 * p, 3 * p + 1}) {
        auto metrics = run("zb-h2", p, m, c);
        for (auto& r : metrics.ranks)
          ASSERT_EQ(r.idle_ns, (p - 1) * (c.F + c.I - 2 * c.W)) << "p=" << p << " m=" << m << " rank " << r.rank;
        ++checked;
      }
  }
  EXPECT_GT(checked, 40);
}

TEST(Formulas, InterleavedBubbleIsOneOverVOfOneFOneB) {
  // Per-chunk costs f, b: bubble (p-1)(f+b) = (1/v)(p-1)/m of the ideal time m·v·(f+b).
  for (auto c : kRatios)
    for (int p : {2, 3, 4, 8})
      for (int v : {2, 3, 4})
        for (int m : {p, 2 * p, 4 * p}) {
          auto metrics = run("interleaved-1f1b", p, m, c, {}, v);
          auto ideal = static_cast<std::int64_t>(m) * v * (c.F + c.I + c.W);
          for (auto& r : metrics.ranks) {
            ASSERT_EQ(r.busy_ns, ideal);
            ASSERT_EQ(r.idle_ns, (p - 1) * (c.F + c.I + c.W)) << "p=" << p << " v=" << v << " m=" << m << " rank " << r.rank;
          }
        }
}

TEST(Formulas, DualPipeLargestIdleIsHalfPMinusOneTimesFBPlusBMinusThreeW) {
  // Holds exactly when F = I, max(F, B) < F&B < F + B and W < I (docs/closed-forms.md §7). B = I + W.
  int checked = 0;
  for (std::int64_t F : {1000, 1500})
    for (std::int64_t W : {100, 400, 900}) {
      std::int64_t I = F, B = I + W;
      for (std::int64_t FB : {std::max(F, B) + 1, (std::max(F, B) + F + B) / 2, F + B - 1}) {
        for (int p : {2, 4, 6, 8})
          for (int m : {2 * p, 2 * p + 2, 3 * p + (p % 2 == 0 ? 0 : 1), 6 * p}) {
            if (m % 2) continue;
            auto dp = run("dualpipe", p, m, {F, I, W}, FB);
            EXPECT_EQ(dp.max_idle_ns(), (p / 2 - 1) * (FB + B - 3 * W)) << "dualpipe p=" << p << " m=" << m;
            // DualPipeV on p/2 devices is the same pipeline cut in half.
            auto dv = run("dualpipev", p / 2, m / 2 >= p ? m / 2 : p, {F, I, W}, FB);
            EXPECT_EQ(dv.max_idle_ns(), (p / 2 - 1) * (FB + B - 3 * W)) << "dualpipev devices=" << p / 2;
            ++checked;
          }
      }
    }
  EXPECT_GT(checked, 100);
}

TEST(Formulas, ZbVHasNoBubbleWhenFEqualsIEqualsW) {
  for (int p : {2, 3, 4, 8})
    for (int m : {2 * p - 1, 2 * p, 4 * p}) {
      auto metrics = run("zb-v", p, m, {1000, 1000, 1000});
      EXPECT_EQ(metrics.bubble_rate, 0.0) << "p=" << p << " m=" << m;
      EXPECT_DOUBLE_EQ(metrics.ranks[0].peak_activations, p);  // 1F1B's peak memory
    }
}

TEST(Formulas, PeakActivationsMatchThePublishedCounts) {
  for (int p : {2, 3, 4, 6, 8}) {
    int m = 4 * p;
    Ratio c{1000, 1000, 500};
    auto peak = [&](const char* name, double w) { return run(name, p, m, c, {}, 2, w).ranks; };
    for (auto& r : peak("1f1b", 0.25)) EXPECT_DOUBLE_EQ(r.peak_activations, p - r.rank);
    // ZeroBubble Table 2 and per-worker memory: ZB-H1 (p-i+1)M_B + (i-1)M_W, ZB-H2 (2p-2i+1)M_B + (2i-2)M_W
    // with i 1-indexed and M_W = w·M_B.
    for (double w : {0.25, 0.5, 1.0}) {
      for (auto& r : peak("zb-h1", w)) {
        int i = r.rank + 1;
        EXPECT_NEAR(r.peak_activations, (p - i + 1) + (i - 1) * w, 1e-9) << "zb-h1 p=" << p << " rank " << r.rank;
      }
      for (auto& r : peak("zb-h2", w)) {
        int i = r.rank + 1;
        EXPECT_NEAR(r.peak_activations, (2 * p - 2 * i + 1) + (2 * i - 2) * w, 1e-9) << "zb-h2 p=" << p << " rank " << r.rank;
      }
    }
    if (p % 2 == 0) {  // DeepSeek-V3 Table 2: DualPipe PP+1 activations, 2x parameters
      auto dp = run("dualpipe", p, 2 * m, c, 2000);
      EXPECT_DOUBLE_EQ(dp.max_peak_activations(), p + 1);
      for (auto& r : dp.ranks) EXPECT_DOUBLE_EQ(r.parameter_copies, 2.0);
    }
    // DualPipeV on p devices: PP+1 = 2p+1 chunks of half a stage.
    auto dv = run("dualpipev", p, 2 * m, c, 2000);
    EXPECT_DOUBLE_EQ(dv.max_peak_activations(), (2 * p + 1) / 2.0);
    EXPECT_DOUBLE_EQ(dv.ranks[0].parameter_copies, 1.0);
  }
}

}  // namespace
}  // namespace pipesim
