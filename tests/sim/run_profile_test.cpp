// The hardware profile fitted from a run's operator-tagged kernels, against a synthetic run whose every
// kernel lasts what a known profile says (GEMMs at top x min(1, x / knee) per pass kind, attention per
// direction, memory at bytes / bandwidth + a fixed time, a fixed gap between kernels): the fit must give
// those figures back, ignore the warm-up step, and price every action back to its measured length.
#include "sim/run_profile.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"

namespace pipesim {
namespace {

struct TrueRates {
  double knee = 256, top_f = 40, top_i = 30, top_w = 35;  // TFLOP/s
  double attention_f = 20, attention_b = 15;              // TFLOP/s
  double memory_GBps = 1000, fixed_us = 5, gap_us = 2;
  double kernel_ns(const OpWork& w) const {
    switch (w.kind) {
      case OpKind::Gemm: {
        double top = w.pass == 'F' ? top_f : w.pass == 'I' ? top_i : top_w;
        return w.flops / (top * std::min(1.0, w.min_dim / knee) * 1e3);
      }
      case OpKind::Attention: return w.flops / ((w.pass == 'F' ? attention_f : attention_b) * 1e3);
      default: return w.bytes / memory_GBps + fixed_us * 1e3;
    }
  }
};

// The operators of one pass of a stage: GEMMs below and above the knee in stage-dependent mixes, and
// memory-bound kernels whose bytes per kernel differ by stage and pass, so every figure is identifiable.
std::vector<OpWork> ops_of(int stage, char pass, double only_dim = 0) {
  std::vector<OpWork> ops;
  double scale = pass == 'F' ? 1 : pass == 'I' ? 1.5 : 0.75;
  if (only_dim > 0) {  // a run of one size: every GEMM of one smallest dimension
    ops.push_back({OpKind::Gemm, pass, (stage + 1) * 3e9 * scale, 0, only_dim});
  } else if (stage == 0) {
    ops.push_back({OpKind::Gemm, pass, 1e9 * scale, 0, 64});
    ops.push_back({OpKind::Gemm, pass, 8e9 * scale, 0, 1024});
  } else {
    ops.push_back({OpKind::Gemm, pass, 2e9 * scale, 0, 128});
    ops.push_back({OpKind::Gemm, pass, 6e9 * scale, 0, 1024});
  }
  if (pass != 'W') ops.push_back({OpKind::Attention, pass, (pass == 'F' ? 2e9 : 4e9) * (stage + 1), 0, 0});
  int kernels = stage == 0 ? 2 : pass == 'F' ? 5 : 3;
  for (int k = 0; k < kernels; ++k) ops.push_back({OpKind::Memory, pass, 0, (stage == 0 ? 4e6 : 3e5) * (k + 1) * scale, 0});
  return ops;
}

// ZB-H1 on 2 ranks (F, I and W actions), two steps: step 0, the warm-up, runs every kernel 3x slower.
// `pair_slowdown`: the kernels of overlapped F&B pairs run that much slower (the halves sharing the GPU).
RunRecord synthetic_run(const TrueRates& t, double only_dim = 0, const char* schedule = "zb-h1",
                        double pair_slowdown = 1) {
  RunRecord run;
  run.schedule = lower(generate_schedule(schedule, {2, schedule == std::string("zb-h1") ? 4 : 8, 1}));
  run.source = "measured";
  run.workload = {{"precision", "fp32"}};
  for (int step = 0; step < 2; ++step) {
    std::vector<Span> spans;
    std::vector<KernelSpan> kernels;
    for (int r = 0; r < run.schedule.ranks; ++r) {
      std::int64_t now = 0, op = 0;
      for (auto& a : run.schedule.programs[static_cast<std::size_t>(r)]) {
        if (!a.is_compute()) continue;
        Span span;
        span.rank = r, span.action = a, span.start_ns = now;
        std::vector<OpWork> ran;
        for (auto& p : a.passes()) {
          for (char pass : {'F', 'I', 'W'}) {
            bool runs = p.op == Op::F ? pass == 'F' : p.op == Op::B ? pass != 'F' : pass == (p.op == Op::I ? 'I' : 'W');
            if (!runs) continue;
            auto more = ops_of(p.stage, pass, only_dim);
            ran.insert(ran.end(), more.begin(), more.end());
          }
        }
        double slow = (step == 0 ? 3 : 1) * (a.op == Op::OverlapFB ? pair_slowdown : 1);
        for (auto& w : ran) {
          now += static_cast<std::int64_t>(t.gap_us * 1e3);
          auto length = static_cast<std::int64_t>(std::llround(t.kernel_ns(w) * slow));
          kernels.push_back({r, 7, "kernel", now, now + length, 0, op++, w});
          now += length;
        }
        span.end_ns = now;
        spans.push_back(span);
      }
    }
    run.steps.push_back(spans);
    run.kernels.push_back(kernels);
  }
  return run;
}

TEST(RunProfile, FitGivesTheKernelsRatesBack) {
  TrueRates t;
  auto run = synthetic_run(t);
  HwProfile base;
  base.name = "base";
  auto fit = fit_run_profile(run, base, 0, "synthetic");
  auto& p = fit.profile;
  auto near = [](double got, double want) { EXPECT_NEAR(got, want, 1e-4 * want); };
  for (double x : {64.0, 128.0, 256.0, 1024.0, 4096.0}) {
    SCOPED_TRACE(x);
    double share = std::min(1.0, x / t.knee);
    near(gemm_tflops(p, "fp32", x, GemmKind::Forward), t.top_f * share);
    near(gemm_tflops(p, "fp32", x, GemmKind::Dgrad), t.top_i * share);
    near(gemm_tflops(p, "fp32", x, GemmKind::Wgrad), t.top_w * share);
  }
  near(p.attention_forward_tflops.value, t.attention_f);
  near(p.attention_backward_tflops.value, t.attention_b);
  near(p.memory_GBps.value, t.memory_GBps);
  near(p.memory_kernel_us.value, t.fixed_us);
  near(p.launch_gap_us.value, t.gap_us);
  EXPECT_NE(p.memory_GBps.source.find("synthetic"), std::string::npos);
  // A row per phase and figure, each fitted to its measurement.
  EXPECT_EQ(fit.rows.size(), 6u /* gemm */ + 4u /* attention */ + 6u /* memory */);
  for (auto& row : fit.rows) EXPECT_NEAR(row.residual(), 0, 1e-4) << row.figure << " " << row.phase;
}

TEST(RunProfile, PricedActionsLastWhatTheirKernelsAndGapsDid) {
  TrueRates t;
  auto run = synthetic_run(t);
  auto fit = fit_run_profile(run, HwProfile{}, 0, "synthetic");
  auto [priced, checks] = price_run(run, fit.profile);
  for (std::size_t i = 0; i < run.steps[1].size(); ++i) {
    auto& measured = run.steps[1][i];
    auto& p = priced.steps[1][i];
    EXPECT_EQ(p.start_ns, measured.start_ns);
    EXPECT_NEAR(static_cast<double>(p.end_ns - p.start_ns), static_cast<double>(measured.end_ns - measured.start_ns),
                1e-4 * static_cast<double>(measured.end_ns - measured.start_ns))
        << to_string(measured.action);
  }
  ASSERT_EQ(checks.size(), 6u);  // 2 stages x F, I, W
  for (auto& c : checks) {
    EXPECT_NEAR(c.error(), 0, 1e-4);
    EXPECT_LT(c.kernel_share, 1);  // the gaps are not kernel time
    EXPECT_GT(c.kernel_share, 0.9);
    // Where the time goes, by kind: W runs no attention; the kinds add up to the kernels' share here (every
    // action of a (stage, pass) is alike, so the medians add).
    EXPECT_NEAR(c.gemm_share + c.attention_share + c.memory_share + c.comm_share, c.kernel_share, 1e-9);
    EXPECT_EQ(c.comm_share, 0);
    if (c.op == Op::W) EXPECT_EQ(c.attention_share, 0);
    else EXPECT_GT(c.attention_share, 0.01);
    EXPECT_GT(c.gemm_share, 0.3);
  }
}

// One size cannot place the GEMM knee (its GEMMs sit on one side of it); two sizes, one below and one above,
// give the whole curve back.
TEST(RunProfile, SeveralSizesGiveTheGemmKnee) {
  TrueRates t;
  auto small = synthetic_run(t, 64), large = synthetic_run(t, 1024);
  auto alone = fit_run_profile(large, HwProfile{}, 0, "large").profile;
  EXPECT_NEAR(gemm_tflops(alone, "fp32", 1024, GemmKind::Forward), t.top_f, 1e-3 * t.top_f);
  EXPECT_GT(std::abs(gemm_tflops(alone, "fp32", 64, GemmKind::Forward) - t.top_f * 64 / t.knee), 1.0);  // guessed
  auto both = fit_run_profile({{&small, "small"}, {&large, "large"}}, HwProfile{}, 0);
  for (double x : {64.0, 1024.0})
    for (auto [kind, top] : {std::pair{GemmKind::Forward, t.top_f}, {GemmKind::Dgrad, t.top_i}, {GemmKind::Wgrad, t.top_w}})
      EXPECT_NEAR(gemm_tflops(both.profile, "fp32", x, kind), top * std::min(1.0, x / t.knee), 1e-3 * top) << x;
  bool named = false;
  for (auto& row : both.rows) named |= row.phase == "run 2 stage 1 (W)";
  EXPECT_TRUE(named);
  auto fp64 = large;
  fp64.workload["precision"] = "fp64";
  EXPECT_THROW(fit_run_profile({{&small, "small"}, {&fp64, "fp64"}}, HwProfile{}, 0), Error);
}

// DualPipe's overlapped pairs run their kernels slower (the halves share the GPU): the fit measures each
// phase on the actions that ran alone, so the rates are still an idle GPU's.
TEST(RunProfile, PairsDoNotSlowTheFittedRates) {
  TrueRates t;
  auto run = synthetic_run(t, 0, "dualpipe", 1.5);
  bool pairs = false;
  for (auto& s : run.steps[1]) pairs |= s.action.op == Op::OverlapFB;
  ASSERT_TRUE(pairs);
  auto p = fit_run_profile(run, HwProfile{}, 0, "dualpipe").profile;
  EXPECT_NEAR(gemm_tflops(p, "fp32", 1024, GemmKind::Forward), t.top_f, 1e-3 * t.top_f);
  EXPECT_NEAR(gemm_tflops(p, "fp32", 64, GemmKind::Dgrad), t.top_i * 64 / t.knee, 1e-3 * t.top_i);
  EXPECT_NEAR(p.attention_backward_tflops.value, t.attention_b, 1e-3 * t.attention_b);
  EXPECT_NEAR(p.memory_GBps.value, t.memory_GBps, 1e-3 * t.memory_GBps);
}

// The table a run's GEMMs measure: tensor-core math names it (FP32 storage), else the precision.
TEST(RunProfile, PrecisionIsTheGemmMathOrTheStorage) {
  RunRecord run;
  EXPECT_EQ(run_precision(run), "fp32");
  run.workload = {{"precision", "fp64"}};
  EXPECT_EQ(run_precision(run), "fp64");
  run.workload = {{"precision", "fp32"}, {"gemm_math", "bf16"}};
  EXPECT_EQ(run_precision(run), "bf16");
  run.workload["gemm_math"] = "tf32";
  EXPECT_EQ(run_precision(run), "tf32");
  run.workload["gemm_math"] = "fp8";
  EXPECT_EQ(run_precision(run), "fp8");
  run.workload["gemm_math"] = "int4";
  try {
    run_precision(run);
    ADD_FAILURE() << "int4 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'int4'"), std::string::npos) << e.what();
  }
}

TEST(RunProfile, RefusesARunWithoutTaggedKernels) {
  auto run = synthetic_run(TrueRates{});
  for (auto& step : run.kernels)
    for (auto& k : step) k.op = -1;
  try {
    fit_run_profile(run, HwProfile{}, 0, "old.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("old.json: no kernel names the operator"), std::string::npos) << e.what();
  }
  EXPECT_THROW(price_run(run, HwProfile{}), Error);
}

// Pricing needs the run's own GEMM table (no silent fall back to bf16's) and kernels in every step.
TEST(RunProfile, PricingRefusesAMissingTableOrAStepWithoutKernels) {
  auto run = synthetic_run(TrueRates{});
  auto fitted = fit_run_profile(run, HwProfile{}, 0, "synthetic").profile;
  auto expect_error = [](auto&& call, const std::string& text) {
    try {
      call();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  auto other = fitted;
  other.name = "h100";
  other.gemm_tflops.clear();
  other.gemm_tflops["bf16"] = {{{1, 500}}, "a bf16 table"};
  expect_error([&] { price_run(run, other); }, "hardware profile h100 has no fp32 GEMM table");
  auto short_run = run;
  short_run.kernels[1].clear();
  expect_error([&] { price_run(short_run, fitted); }, "step 1 recorded no kernels");
  auto odd = run;
  odd.workload["precision"] = "fp16";
  expect_error([&] { price_run(odd, fitted); }, "workload.precision 'fp16' is not fp32 or fp64");
}

}  // namespace
}  // namespace pipesim
