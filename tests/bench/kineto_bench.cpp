// Kineto reader speed in MB/s of trace text: parse_kineto on a synthetic ~150 MB trace in memory, and
// read_kineto on the same trace as a plain and as a gzip file. The trace imitates torch.profiler's output:
// CPU ops with Input Dims, runtime launches, kernels with long templated names and args, flow events.
// Run: build/tests/kineto_bench
#include <unistd.h>
#include <zlib.h>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "traces/kineto_reader.hpp"
#include "traces/trace_import.hpp"

namespace pipesim {
namespace {

constexpr std::size_t kTargetBytes = 150u << 20;

std::string make_trace() {
  static const char* kernels[] = {
      "void cutlass::device_kernel<cutlass::gemm::kernel::GemmUniversal<cute::tuple<int, int, int, int>, "
      "cutlass::gemm::collective::CollectiveMma<cutlass::gemm::MainloopSm90TmaGmmaWarpSpecialized<4, "
      "cute::tuple<cute::C<2>, cute::C<1>, cute::C<1>>, cutlass::gemm::KernelTmaWarpSpecializedCooperative>, "
      "cute::tuple<cute::C<128>, cute::C<256>, cute::C<64>>, cutlass::bfloat16_t>>>(Params)",
      "void cuda::per_token_cast_to_fp8_with_channels<__nv_bfloat16, 128, false, 128, false>(__nv_bfloat16 const*, "
      "int, unsigned char*, float*, int, int, int, int, bool, float, __nv_fp8_interpretation_t)",
      "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl_nocast<at::native::direct_copy_kernel_cuda("
      "at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda(c10::BFloat16)#1}>(at::TensorIteratorBase&, "
      "at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::"
      "{lambda(c10::BFloat16)#1} const&)::{lambda(int)#1}>(int, at::native::gpu_kernel_impl_nocast)",
      "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)"};
  static const char* ops[] = {"aten::mm", "aten::to", "aten::copy_", "aten::add_", "aten::_scaled_mm", "aten::view"};
  std::string out = "{\n  \"schemaVersion\": 1,\n  \"distributedInfo\": {\"backend\": \"nccl\", \"rank\": 0, "
                    "\"world_size\": 64},\n  \"traceEvents\": [\n";
  out.reserve(kTargetBytes + (1 << 20));
  std::int64_t ts = 1740461679470692, id = 4609;
  for (std::size_t i = 0; out.size() < kTargetBytes; ++i, ++id, ts += 7) {
    auto frac = i % 2 ? fmt::format(".{:03}", i % 1000) : std::string();  // newer Kineto writes ns fractions
    fmt::format_to(std::back_inserter(out),
                   "  {{\n    \"ph\": \"X\", \"cat\": \"cpu_op\", \"name\": \"{}\", \"pid\": 1166, \"tid\": 1166,\n"
                   "    \"ts\": {}{}, \"dur\": {},\n    \"args\": {{\n      \"External id\": {},\"Record function id\": 0, "
                   "\"Input Dims\": [[2048, 7168], [7168, 512], []], \"Input type\": [\"c10::BFloat16\", "
                   "\"c10::BFloat16\", \"\"], \"Concrete Inputs\": [\"\", \"\", \"\"], \"Ev Idx\": {}\n    }}\n  }},\n",
                   ops[i % 6], ts, frac, 30 + i % 50, id, i);
    fmt::format_to(std::back_inserter(out),
                   "  {{\n    \"ph\": \"X\", \"cat\": \"cuda_runtime\", \"name\": \"cudaLaunchKernel\", \"pid\": 1166, "
                   "\"tid\": 1166,\n    \"ts\": {}{}, \"dur\": 4,\n    \"args\": {{\n      \"External id\": {},  "
                   "\"cbid\": 211, \"correlation\": {}\n    }}\n  }},\n",
                   ts + 2, frac, id, id);
    fmt::format_to(std::back_inserter(out),
                   "  {{\n    \"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"{}\", \"pid\": 0, \"tid\": 27,\n"
                   "    \"ts\": {}{}, \"dur\": {},\n    \"args\": {{\n      \"External id\": {},\n      \"queued\": 0, "
                   "\"device\": 0, \"context\": 1,\n      \"stream\": 27, \"correlation\": {},\n      \"registers per "
                   "thread\": 168,\n      \"shared memory\": 232448,\n      \"blocks per SM\": 0.969697,\n      \"warps "
                   "per SM\": 11.636364,\n      \"grid\": [128, 1, 1],\n      \"block\": [384, 1, 1],\n      \"est. "
                   "achieved occupancy %\": 19\n    }}\n  }},\n",
                   kernels[i % 4], ts + 40, frac, 52 + i % 300, id, id);
    fmt::format_to(std::back_inserter(out),
                   "  {{\n    \"ph\": \"f\", \"id\": {}, \"pid\": 0, \"tid\": 27, \"ts\": {},\n    \"cat\": \"ac2g\", "
                   "\"name\": \"ac2g\", \"bp\": \"e\"\n  }},\n  {{\n    \"ph\": \"s\", \"id\": {}, \"pid\": 1166, \"tid\": "
                   "1166, \"ts\": {},\n    \"cat\": \"ac2g\", \"name\": \"ac2g\"\n  }},\n",
                   id, ts + 40, id, ts + 2);
  }
  out += "  {\n    \"name\": \"Record Window End\", \"ph\": \"i\", \"s\": \"g\",\n    \"pid\": \"\", \"tid\": \"\", "
         "\"ts\": 1740461679603007\n  }\n],\n  \"traceName\": \"bench.pt.trace.json\"\n}\n";
  return out;
}

const std::string& trace_text() {
  static const std::string text = make_trace();
  return text;
}

const std::filesystem::path& bench_dir() {
  static const auto dir = std::filesystem::temp_directory_path() / ("kineto_bench_" + std::to_string(::getpid()));
  return dir;
}

// The trace written once to a temporary file, plain or gzip (level 6, zlib's default).
const std::string& trace_file(bool gzip) {
  auto& dir = bench_dir();
  static std::string files[2];
  auto& file = files[gzip];
  if (!file.empty()) return file;
  std::filesystem::create_directories(dir);
  file = (dir / (gzip ? "trace.json.gz" : "trace.json")).string();
  auto& text = trace_text();
  if (gzip) {
    gzFile gz = gzopen(file.c_str(), "wb6");
    gzbuffer(gz, 1 << 20);
    gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
    gzclose(gz);
  } else {
    std::ofstream(file, std::ios::binary) << text;
  }
  return file;
}

void report(benchmark::State& state, const KinetoTrace& t) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * t.bytes_read);
  state.counters["events"] = static_cast<double>(t.events.size());
  state.counters["events/s"] = benchmark::Counter(
      static_cast<double>(t.events.size()) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(fmt::format("{} MB of text", t.bytes_read >> 20));
}

void Parse(benchmark::State& state) {
  auto& text = trace_text();
  KinetoTrace t;
  for (auto _ : state) benchmark::DoNotOptimize(t = parse_kineto(text, "bench.json"));
  report(state, t);
}

void ReadFile(benchmark::State& state) {
  auto& file = trace_file(state.range(0) != 0);
  KinetoTrace t;
  for (auto _ : state) benchmark::DoNotOptimize(t = read_kineto(file));
  report(state, t);
  if (state.range(0)) state.counters["gz bytes"] = static_cast<double>(std::filesystem::file_size(file));
}

// The whole of `pipesim import` but the output: read, classify, attribute, stream statistics.
void Import(benchmark::State& state) {
  auto& file = trace_file(false);
  ImportOptions options;
  std::int64_t bytes = 0, kernels = 0;
  for (auto _ : state) {
    std::vector<KinetoTrace> traces;
    traces.push_back(read_kineto(file));
    bytes = traces.front().bytes_read;
    auto run = import_traces(std::move(traces), options);
    kernels = static_cast<std::int64_t>(run.ranks.front().kernels.size());
    benchmark::DoNotOptimize(run);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * bytes);
  state.counters["kernels"] = static_cast<double>(kernels);
}

BENCHMARK(Parse)->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK(Import)->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK(ReadFile)->ArgName("gzip")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(2);

}  // namespace
}  // namespace pipesim

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::filesystem::remove_all(pipesim::bench_dir());  // the trace files, if a run wrote them
  return 0;
}
