// Two Metrics equal field by field (makespan, bubble, bytes, and every rank's figures), for the tests that
// hold one way of computing them against another.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "traces/metrics.hpp"

namespace pipesim {

inline void expect_same(const Metrics& a, const Metrics& b, const std::string& what) {
  ASSERT_EQ(a.makespan_ns, b.makespan_ns) << what;
  ASSERT_EQ(a.bubble_rate, b.bubble_rate) << what;
  ASSERT_EQ(a.p2p_bytes, b.p2p_bytes) << what;
  ASSERT_EQ(a.ranks.size(), b.ranks.size()) << what;
  for (std::size_t r = 0; r < a.ranks.size(); ++r) {
    auto &x = a.ranks[r], &y = b.ranks[r];
    ASSERT_EQ(x.busy_ns, y.busy_ns) << what << " rank " << r;
    ASSERT_EQ(x.idle_ns, y.idle_ns) << what << " rank " << r;
    ASSERT_EQ(x.exposed_comm_ns, y.exposed_comm_ns) << what << " rank " << r;
    ASSERT_EQ(x.first_start_ns, y.first_start_ns) << what << " rank " << r;
    ASSERT_EQ(x.last_end_ns, y.last_end_ns) << what << " rank " << r;
    ASSERT_EQ(x.peak_activations, y.peak_activations) << what << " rank " << r;
    ASSERT_EQ(x.peak_activation_bytes, y.peak_activation_bytes) << what << " rank " << r;
    ASSERT_EQ(x.parameter_copies, y.parameter_copies) << what << " rank " << r;
  }
}

}  // namespace pipesim
