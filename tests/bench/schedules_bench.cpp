// Speed of the schedule layer at production sizes: generation, validation (Boost.Graph deadlock check
// included), lowering and CSV export. Run: build/tests/schedules_bench [--benchmark_min_time=0.2]
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "schedules/csv.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

struct Size {
  const char* name;
  int ranks, microbatches;
};
constexpr Size kSizes[] = {{"1f1b", 64, 4096},      {"interleaved-1f1b", 64, 4096}, {"zb-h1", 64, 4096},
                           {"zb-v", 64, 4096},      {"dualpipe", 16, 1024},         {"dualpipev", 16, 1024},
                           {"dualpipe", 64, 4096}};

void set_counters(benchmark::State& state, const Schedule& s) {
  state.counters["actions"] = static_cast<double>(s.action_count());
  state.counters["actions/s"] = benchmark::Counter(static_cast<double>(s.action_count()) *
                                                       static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate);
}

void Generate(benchmark::State& state) {
  auto& size = kSizes[state.range(0)];
  Schedule s;
  for (auto _ : state) s = generate_schedule(size.name, {size.ranks, size.microbatches, 2});
  state.SetLabel(fmt::format("{} p={} m={}", size.name, size.ranks, size.microbatches));
  set_counters(state, s);
}

void Validate(benchmark::State& state) {
  auto& size = kSizes[state.range(0)];
  auto s = generate_schedule(size.name, {size.ranks, size.microbatches, 2});
  for (auto _ : state) validate(s);
  state.SetLabel(fmt::format("{} p={} m={}", size.name, size.ranks, size.microbatches));
  set_counters(state, s);
}

// Rates of the compute actions lowered, so they compare with generation and validation.
void Lower(benchmark::State& state) {
  auto& size = kSizes[state.range(0)];
  auto s = generate_schedule(size.name, {size.ranks, size.microbatches, 2});
  for (auto _ : state) benchmark::DoNotOptimize(lower(s));
  state.SetLabel(fmt::format("{} p={} m={}", size.name, size.ranks, size.microbatches));
  set_counters(state, s);
}

// A lowered schedule (what `pipesim run` executes and `schedule --with-comms` prints) validated and
// written as CSV.
void LoweredValidateCsv(benchmark::State& state) {
  auto& size = kSizes[state.range(0)];
  auto low = lower(generate_schedule(size.name, {size.ranks, size.microbatches, 2}));
  for (auto _ : state) {
    validate(low);
    benchmark::DoNotOptimize(to_csv(low));
  }
  state.SetLabel(fmt::format("{} p={} m={}", size.name, size.ranks, size.microbatches));
  set_counters(state, low);
}

BENCHMARK(Generate)->DenseRange(0, std::size(kSizes) - 1)->Unit(benchmark::kMillisecond);
BENCHMARK(Validate)->DenseRange(0, std::size(kSizes) - 1)->Unit(benchmark::kMillisecond);
BENCHMARK(Lower)->DenseRange(0, std::size(kSizes) - 1)->Unit(benchmark::kMillisecond);
BENCHMARK(LoweredValidateCsv)->DenseRange(0, 1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pipesim

BENCHMARK_MAIN();
