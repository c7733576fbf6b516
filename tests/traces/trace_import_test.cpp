// Kineto import against traces this test writes: known kernels on known streams under PyTorch
// pipelining's annotations, known gaps, and one straggler rank. The imported timeline must be exactly the
// written one, and compare() against a prediction must name the straggler.
#include <gtest/gtest.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "sim/engine.hpp"
#include "traces/calibration.hpp"
#include "traces/import_report.hpp"
#include "traces/trace_import.hpp"

namespace pipesim {
namespace {

struct Written {
  int rank;
  Action action;
  std::int64_t start_ns, end_ns;  // of its kernels on the GPU
};

// One rank's trace: each action a "PP:<action>" annotation on the main thread with two kernel launches; the
// kernels run on stream 7, the first for 60% of the action, 5 us idle, the second for the rest; actions are
// separated by `gap_us`. Durations in us: F 100, B 200, times `slowdown`.
std::string rank_trace(int rank, const std::vector<Action>& program, double slowdown, std::int64_t t0_us,
                       std::vector<Written>& written) {
  std::string events;
  auto add = [&](const std::string& e) { events += (events.empty() ? "" : ",\n") + e; };
  std::int64_t gpu_ns = t0_us * 1000, cpu_us = t0_us - 50;
  int correlation = 1000;
  for (auto& a : program) {
    std::int64_t dur_ns = static_cast<std::int64_t>((a.op == Op::F ? 100e3 : 200e3) * slowdown);
    std::int64_t first = dur_ns * 6 / 10, second = dur_ns - first - 5000;
    add(fmt::format(R"({{"ph":"X","cat":"user_annotation","name":"PP:{}","pid":10,"tid":10,"ts":{},"dur":40}})",
                    to_string(a), cpu_us));
    for (int k = 0; k < 2; ++k) {
      std::int64_t start = k == 0 ? gpu_ns : gpu_ns + first + 5000, len = k == 0 ? first : second;
      add(fmt::format(R"({{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":10,"tid":10,"ts":{},"dur":5,"args":{{"correlation":{}}}}})",
                      cpu_us + 10 + 10 * k, correlation));
      add(fmt::format(R"({{"ph":"X","cat":"kernel","name":"{}","pid":0,"tid":7,"ts":{}.{:03},"dur":{}.{:03},"args":{{"correlation":{},"stream":7,"device":0}}}})",
                      k == 0 ? "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn" : "void at::native::vectorized_elementwise_kernel<4>",
                      start / 1000, start % 1000, len / 1000, len % 1000, correlation));
      add(fmt::format(R"({{"ph":"f","cat":"ac2g","id":{},"pid":0,"tid":7,"ts":{},"bp":"e"}})", correlation, start / 1000));
      ++correlation;
    }
    written.push_back({rank, a, gpu_ns, gpu_ns + dur_ns});
    gpu_ns += dur_ns + 20000;  // 20 us between actions
    cpu_us += 50;
  }
  add(fmt::format(R"({{"ph":"X","cat":"user_annotation","name":"ProfilerStep#3","pid":10,"tid":10,"ts":{},"dur":{}}})",
                  t0_us - 60, cpu_us - t0_us + 100));
  return fmt::format(R"({{"schemaVersion":1,"distributedInfo":{{"backend":"nccl","rank":{},"world_size":4}},
"deviceProperties":[{{"id":0,"name":"NVIDIA H100","numSms":132}}],"traceEvents":[
{}
]}})",
                     rank, events);
}

TEST(TraceImport, SyntheticRunImportsExactlyAndNamesTheStraggler) {
  auto schedule = find_schedule("1f1b").generate({4, 8, 1});
  std::vector<KinetoTrace> traces;
  std::vector<Written> written;
  for (int r = 0; r < 4; ++r) {
    auto text = rank_trace(r, schedule.programs[static_cast<std::size_t>(r)], r == 2 ? 1.5 : 1.0, 1'000'000 + 123 * r, written);
    traces.push_back(parse_kineto(text, fmt::format("rank{}.pt.trace.json", r)));
  }
  auto run = import_traces(std::move(traces), ImportOptions{});
  ASSERT_EQ(run.ranks.size(), 4u);
  EXPECT_TRUE(run.unmatched.empty());
  auto record = to_run_record(run);
  ASSERT_EQ(record.steps.size(), 1u);
  EXPECT_EQ(record.schedule.ranks, 4);
  EXPECT_EQ(record.schedule.microbatches, 8);
  // Every span is the written action, at its written time relative to the earliest action.
  std::int64_t begin = INT64_MAX;
  for (auto& w : written) begin = std::min(begin, w.start_ns);
  ASSERT_EQ(record.steps[0].size(), written.size());
  for (auto& w : written) {
    auto it = std::find_if(record.steps[0].begin(), record.steps[0].end(),
                           [&](const Span& s) { return s.rank == w.rank && s.action == w.action; });
    ASSERT_NE(it, record.steps[0].end()) << to_string(w.action);
    EXPECT_EQ(it->start_ns, w.start_ns - begin) << to_string(w.action);
    EXPECT_EQ(it->end_ns, w.end_ns - begin) << to_string(w.action);
  }
  // Stream statistics: each action has one 5 us gap inside, actions 20 us apart.
  auto& r0 = run.ranks[0];
  ASSERT_EQ(r0.streams.size(), 1u);
  EXPECT_EQ(r0.streams[0].gaps_ns, static_cast<std::int64_t>(16 * 5000 + 15 * 20000));
  EXPECT_EQ(r0.stall_ns, 0);
  // The report sums kernels per class.
  auto summary = summarize(run);
  EXPECT_EQ(summary.classes.at("gemm.bf16").kernels, 4 * 16);
  // Against the prediction at F 100 us, B 200 us, rank 2 is the straggler.
  auto predicted = simulate(compute_only(record.schedule), uniform_costs("F=100us,I=150us,W=50us,B=200us", 4, 4));
  RunRecord p{*predicted.schedule, "predicted", {}, {}, {predicted.spans}, {}};
  auto c = compare(record, p);
  EXPECT_EQ(c.straggler, 2);
  // An action's span runs from its first kernel's start to its last kernel's end: exactly the written time.
  EXPECT_DOUBLE_EQ(c.ranks[2].busy_ratio, 1.5);
  EXPECT_DOUBLE_EQ(c.ranks[0].busy_ratio, 1.0);
  EXPECT_DOUBLE_EQ(c.median_busy_ratio, 1.0);
}

TEST(TraceImport, UserPatternsAndRanksFromFileNames) {
  std::string text = R"({"traceEvents":[
{"ph":"X","cat":"user_annotation","name":"fwd mb 0","pid":1,"tid":1,"ts":10,"dur":100},
{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":20,"dur":2,"args":{"correlation":5}},
{"ph":"X","cat":"kernel","name":"ncclDevKernel_SendRecv","pid":0,"tid":9,"ts":200,"dur":30,"args":{"correlation":5,"stream":9}},
{"ph":"X","cat":"kernel","name":"my_custom_kernel","pid":0,"tid":9,"ts":300,"dur":30,"args":{"correlation":77,"stream":9}}
]})";
  ImportOptions options;
  options.actions.push_back(parse_action_pattern("^fwd mb ([0-9]+)$=F"));
  std::vector<KinetoTrace> traces;
  traces.push_back(parse_kineto(text, "job-rank_1.json"));
  auto run = import_traces(std::move(traces), options);
  EXPECT_EQ(run.ranks[0].rank, 1);
  ASSERT_EQ(run.ranks[0].actions.size(), 1u);
  // Group 1 is the stage, group 2 (absent) the micro-batch: the first match is micro-batch 0.
  EXPECT_EQ(to_string(run.ranks[0].actions[0].action), "0F0");
  EXPECT_EQ(run.unmatched.at("my_custom_kernel"), 1);
  EXPECT_EQ(run.classes[static_cast<std::size_t>(run.ranks[0].kernels[0].op_class)], "comm.send_recv");
  EXPECT_THROW(parse_action_pattern("fwd"), Error);
  EXPECT_THROW(parse_action_pattern("fwd=X"), Error);
  EXPECT_THROW(parse_action_pattern("(=F"), Error);
  // A stage group past the largest stage number (a Pass holds 24 bits) is refused, never wrapped.
  for (const char* stage : {"8388608", "16777216"}) {
    auto big = text;
    big.replace(big.find("fwd mb 0"), 8, std::string("fwd mb ") + stage);
    std::vector<KinetoTrace> one;
    one.push_back(parse_kineto(big, "job-rank_1.json"));
    try {
      import_traces(std::move(one), options);
      ADD_FAILURE() << "stage " << stage << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("past the largest stage number, 8388607"), std::string::npos) << e.what();
    }
  }
}

TEST(TraceImport, AnnotationsNestPerThreadAndPatternsCountInTimeOrder) {
  // Thread 1: 0F0 around "y"; thread 2: 0B0 overlapping both. A kernel launched under "y" belongs to 0F0.
  // Three "fwd" ranges whose kernels come in reverse file order are micro-batches 0, 1, 2 by start time.
  std::string text = R"({"traceEvents":[
{"ph":"X","cat":"kernel","name":"k3","pid":0,"tid":7,"ts":900,"dur":5,"args":{"correlation":3,"stream":7}},
{"ph":"X","cat":"kernel","name":"k2","pid":0,"tid":7,"ts":800,"dur":5,"args":{"correlation":2,"stream":7}},
{"ph":"X","cat":"kernel","name":"k1","pid":0,"tid":7,"ts":700,"dur":5,"args":{"correlation":1,"stream":7}},
{"ph":"X","cat":"kernel","name":"ky","pid":0,"tid":7,"ts":600,"dur":5,"args":{"correlation":9,"stream":7}},
{"ph":"X","cat":"user_annotation","name":"fwd","pid":1,"tid":1,"ts":300,"dur":10},
{"ph":"X","cat":"user_annotation","name":"fwd","pid":1,"tid":1,"ts":320,"dur":10},
{"ph":"X","cat":"user_annotation","name":"fwd","pid":1,"tid":1,"ts":340,"dur":10},
{"ph":"X","cat":"cuda_runtime","name":"launch","pid":1,"tid":1,"ts":301,"dur":1,"args":{"correlation":1}},
{"ph":"X","cat":"cuda_runtime","name":"launch","pid":1,"tid":1,"ts":321,"dur":1,"args":{"correlation":2}},
{"ph":"X","cat":"cuda_runtime","name":"launch","pid":1,"tid":1,"ts":341,"dur":1,"args":{"correlation":3}},
{"ph":"X","cat":"user_annotation","name":"1F0","pid":1,"tid":1,"ts":100,"dur":100},
{"ph":"X","cat":"user_annotation","name":"y","pid":1,"tid":1,"ts":150,"dur":20},
{"ph":"X","cat":"user_annotation","name":"1B0","pid":1,"tid":2,"ts":140,"dur":100},
{"ph":"X","cat":"cuda_runtime","name":"launch","pid":1,"tid":1,"ts":160,"dur":1,"args":{"correlation":9}}
]})";
  ImportOptions options;
  options.actions.push_back(parse_action_pattern("^fwd$=F"));
  auto run = import_traces({parse_kineto(text, "t.json")}, options);
  auto& r = run.ranks[0];
  auto action_of_kernel = [&](const char* name) {
    for (auto& k : r.kernels)
      if (r.names[k.name] == name) return k.action >= 0 ? to_string(r.actions[static_cast<std::size_t>(k.action)].action) : std::string("-");
    return std::string("?");
  };
  EXPECT_EQ(action_of_kernel("ky"), "1F0");
  EXPECT_EQ(action_of_kernel("k1"), "0F0");
  EXPECT_EQ(action_of_kernel("k2"), "0F1");
  EXPECT_EQ(action_of_kernel("k3"), "0F2");
  ImportOptions letters;
  letters.actions.push_back(parse_action_pattern("^(f)wd$=F"));
  EXPECT_THROW(import_traces({parse_kineto(text, "t.json")}, letters), Error);
}

TEST(TraceImport, TwoTracesOfOneRankAreRefused) {
  std::string text = R"({"distributedInfo":{"rank":0},"traceEvents":[{"ph":"X","cat":"kernel","name":"k","pid":0,"tid":7,"ts":1,"dur":1,"args":{"stream":7}}]})";
  std::vector<KinetoTrace> traces;
  traces.push_back(parse_kineto(text, "a.json"));
  traces.push_back(parse_kineto(text, "b.json"));
  EXPECT_THROW(import_traces(std::move(traces), ImportOptions{}), Error);
}

TEST(TraceImport, DeepSeekKernelsAllClassifiedAndAttributed) {
  if (!std::filesystem::exists(PIPESIM_DEEPSEEK_TRACE)) GTEST_SKIP() << "no DeepSeek trace at " << PIPESIM_DEEPSEEK_TRACE;
  auto run = import_traces({read_kineto(PIPESIM_DEEPSEEK_TRACE)}, ImportOptions{});
  EXPECT_TRUE(run.unmatched.empty());
  auto summary = summarize(run);
  std::int64_t outside = 0;
  for (auto& k : run.ranks[0].kernels) outside += k.phase < 0;
  EXPECT_EQ(outside, 0);
  // The ten phases DeepSeek annotates, four instances each.
  int phases = 0;
  for (auto& p : summary.phases) {
    EXPECT_EQ(p.instances, 4) << p.name;
    ++phases;
  }
  EXPECT_EQ(phases, 10);
  EXPECT_EQ(summary.classes.at("gemm.fp8").kernels, 140);
  EXPECT_EQ(summary.classes.at("attention.forward").kernels, 4);
  EXPECT_EQ(summary.classes.at("attention.backward").kernels, 12);
  EXPECT_THROW(to_run_record(run), Error);  // its annotations name phases, not pipeline actions
}

}  // namespace
}  // namespace pipesim
