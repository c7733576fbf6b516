// The GPU half of the runtime on a GPU: the CUDA stage computes what the CPU stage computes (dense and MoE,
// fp32 and fp64, to rounding), and every registry schedule run on 2 threaded ranks sharing the GPU (GPU
// buffers staged through host memory, as MPI ranks sharing one GPU run) matches the single-process step on
// that GPU: losses bit for bit, gradients to 1e-12 (fp64) and 1e-5 (fp32). Without a usable device every
// test reports SKIPPED with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "common/error.hpp"
#include "common/numeric.hpp"
#include "kernels/cuda/check.hpp"
#include "tests/cuda/gpu_test.hpp"
#include "runtime/comm_threads.hpp"
#include "runtime/cuda/cuda_device.hpp"
#include "runtime/cuda/staged_comm.hpp"
#include "runtime/run.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"

namespace pipesim {
namespace {

WorkloadSpec dense_spec() { return {.layers = 8, .hidden = 16, .heads = 2, .ffn = 32, .seq = 8}; }
WorkloadSpec moe_spec(int ep) {
  auto spec = dense_spec();
  spec.experts = 4;
  spec.experts_per_token = 2;
  spec.expert_ffn = 16;
  spec.ep = ep;
  return spec;
}

template <class T>
class CudaRuntime : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaRuntime, Types);

TYPED_TEST(CudaRuntime, StageComputesWhatTheCpuStageComputes) {
  REQUIRE_GPU();
  using T = TypeParam;
  double tolerance = sizeof(T) == 8 ? 1e-10 : 1e-4;  // different kernels, different rounding
  for (auto spec : {dense_spec(), moe_spec(1)}) {
    auto cpu = make_cpu_device<T>();
    auto gpu = make_cuda_device<T>(0);
    auto a = cpu->make_stage(spec, 0, spec.layers, true, true, {});
    auto b = gpu->make_stage(spec, 0, spec.layers, true, true, {});
    for (int mb = 0; mb < 3; ++mb) {
      a->forward(mb, Buffer<T>{});
      b->forward(mb, Buffer<T>{});
      EXPECT_NEAR(b->loss(mb), a->loss(mb), tolerance * std::abs(a->loss(mb))) << mb;
      a->backward_input(mb, Buffer<T>{});
      b->backward_input(mb, Buffer<T>{});
      a->backward_weight(mb);
      b->backward_weight(mb);
    }
    auto want = a->gradients(), got = b->gradients();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].first, want[i].first);
      std::vector<double> g(got[i].second.begin(), got[i].second.end()), w(want[i].second.begin(), want[i].second.end());
      EXPECT_LE(relative_error(g, w), tolerance) << want[i].first;
    }
  }
}

TYPED_TEST(CudaRuntime, EveryScheduleMatchesTheSingleProcessStepOnTheGpu) {
  REQUIRE_GPU();
  using T = TypeParam;
  for (auto spec : {dense_spec(), moe_spec(2)})  // MoE over 2 expert-parallel replicas: 4 threads
    for (auto& info : schedule_registry()) {
      const int ranks = 2, m = 4;
      if (info.supports({ranks, m, 2})) continue;
      auto lowered = lower(info.generate({ranks, m, 2}));
      std::optional<CheckResult> check;
      run_on_threads(ranks * spec.ep, [&](Comm& comm) {
        auto gpu = make_cuda_device<T>(0);
        auto staged = make_staged_comm(comm);
        auto result = run_pipeline<T>(lowered, spec, *staged, *gpu, {.steps = 1, .check = true});
        if (comm.rank() == 0) check = result.check;
      });
      ASSERT_TRUE(check) << info.name;
      EXPECT_TRUE(check->ok) << info.name << (spec.experts ? " (MoE)" : "") << ": " << check->exact_losses << " of "
                             << check->losses << " losses exact, worst gradient error " << check->worst_relative_error;
    }
}

TEST(CudaRuntime, CudaDeviceWithoutAGpuSaysWhy) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is visible";
  try {
    make_cuda_device<float>(0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device cuda: no usable CUDA device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pipesim
