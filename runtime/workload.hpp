// The runtime's workload: a tiny transformer whose every layer has forward (F), backward-for-input (I) and
// backward-for-weights (W) as separate calls, so a schedule can run W long after I (ZeroBubble, DualPipe).
// Layer: h = x + Attention(RMSNorm(x)); y = h + MLP(RMSNorm(h)), the MLP being a SwiGLU (dense_mlp.hpp) or,
// with experts > 0, a mixture of SwiGLU experts (moe_mlp.hpp) spread over `ep` expert-parallel ranks, each a
// data-parallel replica of the pipeline running its own micro-batches, that trade routed rows by
// all-to-all. A StageModel (stage_model.hpp) holds one pipeline stage's chunk of layers. This file: the
// workload's sizes, validated once, and the all-to-all the MoE layers call.
#pragma once

#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

namespace pipesim {

struct WorkloadSpec {
  int layers = 4;
  int hidden = 32;
  int heads = 4;  // divides hidden
  int ffn = 64;   // SwiGLU inner width
  int seq = 16;
  int micro_batch = 1;  // sequences per micro-batch
  std::uint64_t seed = 1;
  int experts = 0;            // 0: a dense SwiGLU MLP; 8: every layer's MLP is a mixture of 8 experts
  int experts_per_token = 2;  // top-k
  int expert_ffn = 32;        // each expert's SwiGLU inner width
  int ep = 1;                 // expert-parallel group size; divides experts
  int ep_rank = 0;            // this replica's place in the group; holds experts [r·experts/ep, (r+1)·experts/ep)
};

// Expert-parallel all-to-all: buffers[p] goes to EP rank p; returns what each EP rank sent here, in rank
// order (element counts may differ). With ep = 1 the identity. Called in lockstep by all EP ranks. `pause`,
// when set, is called before each all-to-all, outside any operator: an overlapped pair's half lets the other
// half run there (runtime/pair_runner.hpp). A callable converts to one without a pause.
template <class T>
struct AllToAll {
  using Trade = std::function<std::vector<std::vector<T>>(std::vector<std::vector<T>>)>;
  AllToAll() = default;
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, AllToAll> && std::is_constructible_v<Trade, F>)
  AllToAll(F trade_function) : trade(std::move(trade_function)) {}  // NOLINT: a lambda is an AllToAll
  AllToAll(Trade trade_function, std::function<void()> pause_function)
      : trade(std::move(trade_function)), pause(std::move(pause_function)) {}
  explicit operator bool() const { return bool(trade); }
  std::vector<std::vector<T>> operator()(std::vector<std::vector<T>> buffers) const { return trade(std::move(buffers)); }

  Trade trade;
  std::function<void()> pause;
};

// Throws Error (Input) naming the first field out of range.
void validate(const WorkloadSpec& spec);

}  // namespace pipesim
