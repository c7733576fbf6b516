// Golden step×rank grids for small cases checked against the references (see golden/README.md for how
// each order was established), plus structural facts of the published schedules that hold at every size.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "schedules/grid.hpp"
#include "schedules/registry.hpp"
#include "schedules/summary.hpp"

namespace pipesim {
namespace {

std::string golden(const std::string& file) {
  std::ifstream in(std::string(PIPESIM_GOLDEN_DIR) + "/" + file);
  EXPECT_TRUE(in) << "missing golden file " << file;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Case {
  const char* name;
  GeneratorOptions options;
  const char* file;
};

TEST(Golden, GridsMatchTheCheckedOrders) {
  for (auto& c : std::initializer_list<Case>{
           {"gpipe", {3, 4, 2}, "gpipe_p3_m4.txt"},
           {"1f1b", {4, 8, 2}, "1f1b_p4_m8.txt"},
           {"interleaved-1f1b", {4, 8, 2}, "interleaved-1f1b_p4_m8_v2.txt"},
           {"zb-h1", {4, 8, 2}, "zb-h1_p4_m8.txt"},
           {"zb-h2", {4, 8, 2}, "zb-h2_p4_m8.txt"},
           {"zb-v", {4, 8, 2}, "zb-v_p4_m8.txt"},
           {"dualpipe", {8, 20, 2}, "dualpipe_p8_m20.txt"},
           {"dualpipev", {4, 10, 2}, "dualpipev_p4_m10.txt"},
       }) {
    EXPECT_EQ(format_grid(generate_schedule(c.name, c.options)), golden(c.file)) << c.name;
  }
}

// DualPipe is symmetric: rank p-1-r runs rank r's program with the two directions swapped
// (dualpipe.py flips the phase on the second half of the ranks).
TEST(Golden, DualPipeRanksMirrorEachOther) {
  for (int p : {2, 4, 6, 8})
    for (int m : {2 * p, 2 * p + 2, 4 * p, 40}) {
      if (m % 2) continue;
      auto s = generate_schedule("dualpipe", {p, m, 2});
      auto mirror = [&](Pass x) {
        x.stage = x.stage < p ? x.stage + p : x.stage - p;
        x.microbatch = x.microbatch < m / 2 ? x.microbatch + m / 2 : x.microbatch - m / 2;
        return x;
      };
      for (int r = 0; r < p; ++r) {
        auto& mine = s.programs[static_cast<std::size_t>(r)];
        auto& other = s.programs[static_cast<std::size_t>(p - 1 - r)];
        ASSERT_EQ(mine.size(), other.size());
        for (std::size_t k = 0; k < mine.size(); ++k) {
          auto a = mine[k];
          a.pass[0] = mirror(a.pass[0]);
          if (a.op == Op::OverlapFB) a.pass[1] = mirror(a.pass[1]);
          EXPECT_EQ(a, other[k]) << "p=" << p << " m=" << m << " rank " << r << " step " << k;
        }
      }
    }
}

// Published memory facts, read statically off the programs (forwards whose backward has not finished):
// 1F1B and ZB-H1 hold p on the first rank, ZB-H2 2p-1 (ZeroBubble Table 2); GPipe holds all m.
TEST(Golden, PeakInFlightMatchesPublishedCounts) {
  for (int p : {2, 3, 4, 8}) {
    int m = 4 * p;
    auto peak0 = [&](const char* name) { return summarize(generate_schedule(name, {p, m, 2})).peak_in_flight[0]; };
    EXPECT_EQ(peak0("1f1b"), p);
    EXPECT_EQ(peak0("zb-h1"), p);
    EXPECT_EQ(peak0("zb-h2"), 2 * p - 1);
    EXPECT_EQ(peak0("gpipe"), m);
    auto dp = summarize(generate_schedule("dualpipe", {p % 2 ? p + 1 : p, 2 * m, 2}));
    EXPECT_EQ(dp.stages_per_rank, 2);
    EXPECT_DOUBLE_EQ(dp.parameter_copies, 2.0);  // DeepSeek-V3 Table 2: 2x parameters
    EXPECT_DOUBLE_EQ(dp.peak_in_flight[0], (p % 2 ? p + 1 : p) + 1);  // and PP+1 activations
    auto zbv = summarize(generate_schedule("zb-v", {p, m, 2}));
    EXPECT_DOUBLE_EQ(zbv.parameter_copies, 1.0);
    EXPECT_DOUBLE_EQ(zbv.peak_in_flight[0], p);  // 1F1B's peak memory
  }
}

}  // namespace
}  // namespace pipesim
