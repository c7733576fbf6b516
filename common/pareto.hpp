// The Pareto front of points with two costs to minimise (a sweep's step time and peak memory): a point is on
// it when no other point is at most as costly on both and cheaper on one. Sorted once, O(n log n): a
// 20,000-point sweep compared every pair (4e8 pairs) in seconds of its own.
#pragma once

#include <algorithm>
#include <numeric>
#include <vector>

namespace pipesim {

// front[i]: whether point i (valid[i]; invalid points are never on the front nor beat any) is on the front.
// Points with equal costs do not beat each other, so all of them are on the front or none. A point with a
// NaN cost neither beats nor is beaten (every comparison with NaN is false), so it is on the front, as in
// the pairwise definition; it stays out of the sort, whose order NaN would break.
inline std::vector<bool> pareto_front(const std::vector<double>& a, const std::vector<double>& b,
                                      const std::vector<bool>& valid) {
  std::vector<std::size_t> order;
  std::vector<bool> front(a.size(), false);
  for (std::size_t i = 0; i < a.size(); ++i)
    if (valid[i] && (a[i] != a[i] || b[i] != b[i]))
      front[i] = true;
    else if (valid[i])
      order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return a[x] < a[y] || (a[x] == a[y] && b[x] < b[y]); });
  bool any_before = false;
  double best_before = 0;  // the least b over the points with a smaller a
  for (std::size_t g = 0; g < order.size();) {
    auto end = g;
    while (end < order.size() && a[order[end]] == a[order[g]]) ++end;
    double least = b[order[g]];  // the group's least b (sorted first)
    // In the group only the least b survives the others of equal a; it survives the earlier groups when
    // their least b is larger.
    if (!any_before || least < best_before)
      for (auto k = g; k < end && b[order[k]] == least; ++k) front[order[k]] = true;
    best_before = any_before ? std::min(best_before, least) : least;
    any_before = true;
    g = end;
  }
  return front;
}

}  // namespace pipesim
