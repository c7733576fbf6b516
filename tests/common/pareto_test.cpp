// The sorted Pareto front against the definition checked pair by pair, on random points with many ties
// (costs drawn from a few values) and invalid points.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/pareto.hpp"

namespace pipesim {
namespace {

std::vector<bool> front_by_pairs(const std::vector<double>& a, const std::vector<double>& b, const std::vector<bool>& valid) {
  std::vector<bool> front(a.size(), false);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!valid[i]) continue;
    bool beaten = false;
    for (std::size_t j = 0; j < a.size() && !beaten; ++j)
      beaten = valid[j] && a[j] <= a[i] && b[j] <= b[i] && (a[j] < a[i] || b[j] < b[i]);
    front[i] = !beaten;
  }
  return front;
}

TEST(Pareto, EqualsThePairwiseDefinition) {
  std::mt19937_64 rng(7);
  int on_front = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    auto n = static_cast<std::size_t>(rng() % 40);
    int levels = 1 + static_cast<int>(rng() % 8);  // few levels: many ties
    std::vector<double> a(n), b(n);
    std::vector<bool> valid(n);
    for (std::size_t i = 0; i < n; ++i) {
      a[i] = static_cast<double>(rng() % static_cast<unsigned>(levels)) * 0.5;
      b[i] = static_cast<double>(rng() % static_cast<unsigned>(levels)) * 1.5;
      if (rng() % 50 == 0) (rng() % 2 ? a[i] : b[i]) = std::nan("");  // now and then a NaN cost
      valid[i] = rng() % 5 != 0;
    }
    auto want = front_by_pairs(a, b, valid);
    ASSERT_EQ(pareto_front(a, b, valid), want) << "trial " << trial;
    for (bool f : want) on_front += f;
  }
  EXPECT_GT(on_front, 2000);
}

TEST(Pareto, ByHand) {
  // (1,5) (2,3) (2,3) (3,4) (4,1) (1,6) invalid (0,0): the two (2,3) tie and both stay; (3,4) is beaten by
  // (2,3); (1,6) by (1,5).
  std::vector<double> a{1, 2, 2, 3, 4, 1, 0}, b{5, 3, 3, 4, 1, 6, 0};
  std::vector<bool> valid{true, true, true, true, true, true, false};
  EXPECT_EQ(pareto_front(a, b, valid), (std::vector<bool>{true, true, true, false, true, false, false}));
}

}  // namespace
}  // namespace pipesim
