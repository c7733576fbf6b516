// Comparing computed values with expected ones, the way the correctness checks report it; and the median
// the calibrations take of measured times.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace pipesim {

// Norm-wise relative error: the largest difference over the largest magnitude of the expected values
// (the plain largest difference when every expected value is 0).
inline double relative_error(const std::vector<double>& got, const std::vector<double>& want) {
  double diff = 0, top = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::abs(got[i] - want[i]));
    top = std::max(top, std::abs(want[i]));
  }
  return top == 0 ? diff : diff / top;
}

// The median (the mean of the middle two for an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace pipesim
