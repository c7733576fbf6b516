// Simulator speed: simulated actions per second (engine alone, on a validated and lowered schedule) and the
// wall time of whole runs (validation + lowering + engine) for 1F1B 64 ranks x 4096 micro-batches and
// DualPipe 16 x 1024, the metrics-only path, the Chrome trace writer, and a whole DeepSeek-V3 step on 2048
// GPUs. Run: build/tests/sim_bench
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "sim/engine.hpp"
#include "sim/step.hpp"
#include "traces/chrome_trace.hpp"

namespace pipesim {
namespace {

struct Size {
  const char* name;
  int ranks, microbatches;
};
constexpr Size kSizes[] = {{"1f1b", 64, 4096}, {"dualpipe", 16, 1024}, {"zb-v", 64, 4096}, {"dualpipe", 64, 4096},
                           {"1f1b", 64, 256},   {"1f1b", 8, 1024},     {"1f1b", 8, 65536}};

CostSpec bench_costs(const Schedule& s) {
  auto c = uniform_costs("F=1.2ms,I=1.3ms,W=0.7ms,FB=2.4ms", s.stages, s.ranks);
  c.p2p.latency_ns = 20'000;
  c.p2p.bandwidth_bytes_per_ns = 50.0;
  for (auto& st : c.stages) st.activation_bytes = 64 << 20;
  return c;
}

void Engine(benchmark::State& state) {
  auto& size = kSizes[state.range(0)];
  auto lowered = std::make_shared<const Schedule>(lower(generate_schedule(size.name, {size.ranks, size.microbatches, 2})));
  auto costs = resolve_costs(bench_costs(*lowered), *lowered);
  for (auto _ : state) benchmark::DoNotOptimize(simulate_lowered(lowered, costs));
  state.SetLabel(fmt::format("{} p={} m={}", size.name, size.ranks, size.microbatches));
  state.counters["actions"] = static_cast<double>(lowered->action_count());
  state.counters["actions/s"] = benchmark::Counter(
      static_cast<double>(lowered->action_count()) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void WholeRun(benchmark::State& state) {
  auto& size = kSizes[state.range(0)];
  auto s = generate_schedule(size.name, {size.ranks, size.microbatches, 2});
  auto costs = bench_costs(s);
  for (auto _ : state) benchmark::DoNotOptimize(simulate(s, costs));
  state.SetLabel(fmt::format("{} p={} m={} (validate + lower + engine)", size.name, size.ranks, size.microbatches));
}

// The metrics-only path (sim/metrics_pass.hpp): what `simulate --format json` runs, validation included.
void MetricsRun(benchmark::State& state) {
  auto& size = kSizes[state.range(0)];
  auto s = generate_schedule(size.name, {size.ranks, size.microbatches, 2});
  auto costs = bench_costs(s);
  for (auto _ : state) benchmark::DoNotOptimize(simulate_metrics(s, costs));
  state.SetLabel(fmt::format("{} p={} m={} (validate + metrics pass)", size.name, size.ranks, size.microbatches));
  state.counters["actions/s"] = benchmark::Counter(
      static_cast<double>(s.action_count()) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// The Chrome trace writer alone on a ZB-V 64 x 1024 timeline (about 225 MB of JSON).
void ChromeTrace(benchmark::State& state) {
  auto s = generate_schedule("zb-v", {64, 1024, 2});
  auto timeline = simulate(s, bench_costs(s));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto text = to_chrome_trace(timeline);
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.SetLabel("zb-v p=64 m=1024");
  state.counters["MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(bytes) * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

// A whole DeepSeek-V3 step on its 2048-GPU cluster: one representative replica, and --full (all 128).
void DeepSeekStep(benchmark::State& state) {
  auto model = load_model("deepseek-v3");
  Topology topology(load_cluster("deepseek-h800"));
  Plan p;
  p.schedule = "dualpipe";
  p.pp = 16;
  p.ep = 64;
  p.microbatches = 120;
  p.precision = Precision::FP8;
  p.selective_recompute = true;
  p.full = state.range(0) != 0;
  for (auto _ : state) benchmark::DoNotOptimize(simulate_step(model, topology, p));
  state.SetLabel(p.full ? "dualpipe PP16 EP64 DP128, 2048 GPUs, --full" : "dualpipe PP16 EP64 DP128, representative");
}

BENCHMARK(Engine)->DenseRange(0, std::size(kSizes) - 1)->Unit(benchmark::kMillisecond);
BENCHMARK(DeepSeekStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(WholeRun)->DenseRange(0, std::size(kSizes) - 1)->Unit(benchmark::kMillisecond);
BENCHMARK(MetricsRun)->DenseRange(0, std::size(kSizes) - 1)->Unit(benchmark::kMillisecond);
BENCHMARK(ChromeTrace)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pipesim

BENCHMARK_MAIN();
