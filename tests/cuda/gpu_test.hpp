// What every GPU test starts with: skip, with the reason, where no CUDA device is usable (ctest then
// reports the test as skipped, never as passed).
#pragma once

#include <gtest/gtest.h>

#include "kernels/cuda/check.hpp"

#define REQUIRE_GPU()                                                          \
  do {                                                                         \
    if (pipesim::cuda::device_count() == 0) GTEST_SKIP() << pipesim::cuda::no_device_reason(); \
  } while (0)
