// The operators a stage tells its log: per pass, the GEMM FLOPs, attention FLOPs and memory-bound bytes a
// dense layer does, against the hand count of docs/gpu-runtime.md §10 (a linear layer x·W of [R x in] by
// [in x out] is 2·R·in·out FLOPs in each of F, I and W; causal attention 2·R·(s+1)/2·heads·2·d forward and
// twice that backward), operator by operator (13 in F, 13 in I, 9 in W); nested scopes count once; the host
// log times what it is told and numbers its operators per take; MoE layers tag their GEMMs too.
#include "runtime/op_log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "runtime/comm_threads.hpp"
#include "runtime/run.hpp"
#include "runtime/stage_model.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"

namespace pipesim {
namespace {

struct Totals {
  double gemm_flops = 0, attention_flops = 0, memory_bytes = 0, comm_bytes = 0;
  int gemms = 0, attentions = 0, memories = 0;
  std::map<double, int> gemm_min_dims;
};

// Counts what the outermost operators say, per pass; fails on an operator left open or closed twice.
class CountingLog final : public OpLog {
 public:
  void begin(const char* name, const OpWork& work) override {
    if (depth_++ > 0) return;
    auto& t = totals[work.pass];
    names.emplace_back(name);
    switch (work.kind) {
      case OpKind::Gemm:
        t.gemm_flops += work.flops, ++t.gemms, ++t.gemm_min_dims[work.min_dim];
        break;
      case OpKind::Attention: t.attention_flops += work.flops, ++t.attentions; break;
      case OpKind::Memory: t.memory_bytes += work.bytes, ++t.memories; break;
      case OpKind::Comm: t.comm_bytes += work.bytes; break;
      case OpKind::None: ADD_FAILURE() << name << " has no kind"; break;
    }
  }
  void end() override { ASSERT_GT(depth_--, 0) << "end() without begin()"; }
  int depth_ = 0;
  std::map<char, Totals> totals;
  std::vector<std::string> names;
};

TEST(OpLog, DenseLayerWorkMatchesTheHandCount) {
  WorkloadSpec spec;
  spec.layers = 2, spec.hidden = 32, spec.heads = 4, spec.ffn = 48, spec.seq = 12, spec.micro_batch = 3;
  const double R = 36, H = 32, F = 48, s = 12, d = 8, heads = 4, e = sizeof(double);
  // A middle stage (one layer): no input drawing, no final norm or loss.
  StageModel<double> stage(spec, 1, 1, false, false);
  CountingLog log;
  stage.set_op_log(&log);
  std::vector<double> x(std::size_t(R * H), 0.5), dy(std::size_t(R * H), 0.25);
  stage.forward(0, x);
  stage.backward_input(0, dy);
  stage.backward_weight(0);
  EXPECT_EQ(log.depth_, 0);
  const double linear = 2 * R * (4 * H * H + 3 * H * F);  // q, k, v, o and gate, up, down
  const double attention = 2 * R * ((s + 1) / 2) * heads * 2 * d;
  for (char pass : {'F', 'I', 'W'}) {
    SCOPED_TRACE(std::string(1, pass));
    auto& t = log.totals[pass];
    EXPECT_DOUBLE_EQ(t.gemm_flops, linear);
    EXPECT_EQ(t.gemms, 7);
    EXPECT_EQ(t.gemm_min_dims, (std::map<double, int>{{32, 7}}));  // min(36, 32 or 48, 32 or 48) = 32
  }
  EXPECT_DOUBLE_EQ(log.totals['F'].attention_flops, attention);
  EXPECT_DOUBLE_EQ(log.totals['I'].attention_flops, 2 * attention);
  EXPECT_EQ(log.totals['W'].attentions, 0);
  // F: two norms (2RH + H + R elements each), two residual adds (3RH) and the SwiGLU (3RF).
  EXPECT_DOUBLE_EQ(log.totals['F'].memory_bytes, e * (2 * (2 * R * H + H + R) + 2 * 3 * R * H + 3 * R * F));
  EXPECT_EQ(log.totals['F'].memories, 5);
  // I: two norm input gradients (3RH + H + R), two adds and the SwiGLU backward (5RF).
  EXPECT_DOUBLE_EQ(log.totals['I'].memory_bytes, e * (2 * (3 * R * H + H + R) + 2 * 3 * R * H + 5 * R * F));
  // W: the two norms' weight gradients (2RH + R + 2H).
  EXPECT_DOUBLE_EQ(log.totals['W'].memory_bytes, e * 2 * (2 * R * H + R + 2 * H));
  EXPECT_EQ(log.names.size(), 13u + 13u + 9u);
}

TEST(OpLog, LastStageAddsItsNormAndLossAndMoeTagsItsGemms) {
  WorkloadSpec spec;
  spec.layers = 1, spec.hidden = 16, spec.heads = 2, spec.ffn = 32, spec.seq = 8;
  spec.experts = 4, spec.experts_per_token = 2, spec.expert_ffn = 8;
  StageModel<float> stage(spec, 0, 1, true, true);
  CountingLog log;
  stage.set_op_log(&log);
  stage.forward(0, {});
  stage.backward_input(0, {});
  stage.backward_weight(0);
  // Router GEMM [8 x 16]·[16 x 4] and each token's two expert rows through gate, up, down: 2·8·2 rows.
  const double router = 2 * 8 * 16 * 4, experts = 2 * 16 * (2 * 16 * 8 + 8 * 16), attention_block = 2 * 8 * 4 * 16 * 16;
  EXPECT_DOUBLE_EQ(log.totals['F'].gemm_flops, router + experts + attention_block);
  EXPECT_DOUBLE_EQ(log.totals['W'].gemm_flops, router + experts + attention_block);
  int losses = 0;
  for (auto& n : log.names) losses += n == "mse_loss";
  EXPECT_EQ(losses, 1);
}

TEST(OpLog, HostLogTimesTheOutermostOperatorAndNumbersEachTake) {
  HostOpLog log;
  auto origin = HostOpLog::Clock::now();
  {
    OpScope outer(&log, "outer", gemm_work('W', 4, 5, 6));
    OpScope inner(&log, "inner", memory_work('W', 10));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  { OpScope other(&log, "other", memory_work('F', 64)); }
  OpScope none(nullptr, "ignored", memory_work('F', 1));  // no log: nothing happens
  auto spans = log.take(3, origin);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].name, "outer");
  EXPECT_EQ(spans[0].rank, 3);
  EXPECT_EQ(spans[0].stream, kHostStream);
  EXPECT_EQ(spans[0].op, 0);
  EXPECT_EQ(spans[0].work.flops, 2.0 * 4 * 5 * 6);
  EXPECT_EQ(spans[0].work.min_dim, 4);
  EXPECT_GE(spans[0].end_ns - spans[0].start_ns, 2'000'000);
  EXPECT_EQ(spans[1].op, 1);
  EXPECT_LE(spans[0].end_ns, spans[1].start_ns);
  EXPECT_TRUE(log.take(3, origin).empty());
}

// A whole run on the CPU device with operators recorded: every step has them, each inside one of its rank's
// compute actions and of that action's pass; the same number per step (the --check reference step's own
// operators are no step's); a device that does not record gives none.
TEST(OpLog, RunRecordsEachStepsOperatorsInsideTheirActions) {
  WorkloadSpec spec;
  spec.layers = 2, spec.hidden = 16, spec.heads = 2, spec.ffn = 32, spec.seq = 8;
  auto lowered = lower(generate_schedule("zb-h1", {2, 4, 1}));
  for (bool record : {true, false}) {
    RunResult result;
    run_on_threads(2, [&](Comm& comm) {
      auto device = make_cpu_device<double>(record);
      auto r = run_pipeline<double>(lowered, spec, comm, *device, {.steps = 3, .check = true});
      if (comm.rank() == 0) result = std::move(r);
    });
    ASSERT_TRUE(result.check && result.check->ok);
    if (!record) {
      EXPECT_TRUE(result.kernels.empty());
      continue;
    }
    ASSERT_EQ(result.kernels.size(), 3u);
    for (std::size_t k = 0; k < 3; ++k) {
      SCOPED_TRACE(k);
      // 2 stages x 4 micro-batches x (13 F + 13 I + 9 W operators per layer x 1 layer each), plus the last
      // stage's final norm and loss (F), its norm's input gradient (I) and weight gradient (W).
      EXPECT_EQ(result.kernels[k].size(), std::size_t(2 * 4 * (13 + 13 + 9) + 4 * 4));
      for (auto& kernel : result.kernels[k]) {
        const Span* inside = nullptr;
        for (auto& s : result.steps[k])
          if (s.rank == kernel.rank && s.stream == Stream::Compute && s.action.is_compute() &&
              s.start_ns <= kernel.start_ns && kernel.end_ns <= s.end_ns)
            inside = &s;
        ASSERT_NE(inside, nullptr) << kernel.name << " at " << kernel.start_ns;
        char pass = inside->action.op == Op::F ? 'F' : inside->action.op == Op::I ? 'I' : 'W';
        EXPECT_EQ(kernel.work.pass, pass) << kernel.name << " in " << to_string(inside->action);
        EXPECT_EQ(kernel.stream, kHostStream);
      }
    }
  }
}

// DualPipe and DualPipeV with MoE over 2 EP replicas: an overlapped pair's halves run one after the other (every operator
// of its F before any of its backward), or with overlap_pairs take turns at their all-to-alls (a backward
// operator before some of the F's), with the same losses and gradients either way.
TEST(OpLog, OverlappedPairsTakeTurnsAtTheirAllToAlls) {
  WorkloadSpec spec;
  spec.layers = 4, spec.hidden = 16, spec.heads = 2, spec.seq = 8, spec.experts = 4, spec.experts_per_token = 2;
  spec.expert_ffn = 16, spec.ep = 2;
  for (auto [name, overlap] : {std::pair{"dualpipe", false}, std::pair{"dualpipe", true}, std::pair{"dualpipev", true}}) {
    SCOPED_TRACE(std::string(name) + (overlap ? ", overlap" : ", one after the other"));
    auto lowered = lower(generate_schedule(name, {2, 8, 1}));
    RunResult result;
    run_on_threads(4, [&](Comm& comm) {
      auto device = make_cpu_device<double>(true);
      auto r = run_pipeline<double>(lowered, spec, comm, *device, {.steps = 1, .check = true, .overlap_pairs = overlap});
      if (comm.rank() == 0) result = std::move(r);
    });
    ASSERT_TRUE(result.check && result.check->ok);
    int pairs = 0, interleaved = 0;
    for (auto& span : result.steps[0]) {
      if (span.stream != Stream::Compute || span.action.op != Op::OverlapFB) continue;
      ++pairs;
      std::vector<const KernelSpan*> inside;
      for (auto& k : result.kernels[0])
        if (k.rank == span.rank && span.start_ns <= k.start_ns && k.end_ns <= span.end_ns) inside.push_back(&k);
      std::sort(inside.begin(), inside.end(), [](auto* a, auto* b) { return a->start_ns < b->start_ns; });
      bool backward_seen = false, forward_after = false;
      for (auto* k : inside) {
        if (k->work.pass != 'F') backward_seen = true;
        else if (backward_seen) forward_after = true;
      }
      interleaved += forward_after;
    }
    ASSERT_GT(pairs, 0);
    EXPECT_EQ(interleaved, overlap ? pairs : 0);
  }
}

}  // namespace
}  // namespace pipesim
