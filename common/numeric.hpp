// Comparing computed values with expected ones, the way the correctness checks report it.
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

}  // namespace pipesim
