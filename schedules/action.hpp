// The unit of a schedule: one pass of one stage for one micro-batch, in PyTorch pipelining's spelling
// (`0F3`, `1I2`, `1W2`, `0B1`, `2SEND_F1`, `2RECV_B0`), or DualPipe's overlapped forward&backward pair
// `(0F3;7B1)OVERLAP_F_B`, whose compute hides each half's communication. Text form parses back exactly.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pipesim {

enum class Op : std::uint8_t {
  F,          // forward
  I,          // backward for input (activation gradient)
  W,          // backward for weights
  B,          // full backward: I and W fused
  OverlapFB,  // a forward of one micro-batch overlapped with a backward (B or I) of another
  SendF,      // after lowering: send a forward activation to the next stage
  RecvF,
  SendB,      // after lowering: send an input gradient to the previous stage
  RecvB,
};

// Stage numbers stop here: a Pass packs its op and stage in 4 bytes (8 in all, an Action 20), because a
// simulation reads every action once and the bytes it reads are its time (docs/performance.md §6).
// Generators stay far below (4096 ranks x 64 chunks); imported schedules are checked where they are read.
constexpr int kMaxStages = 1 << 23;

// One pass; an Action is one pass, or two for OverlapFB.
struct Pass {
  Op op : 8 = Op::F;
  std::int32_t stage : 24 = 0;  // 0 .. kMaxStages - 1
  std::int32_t microbatch = 0;
  friend bool operator==(const Pass&, const Pass&) = default;
};
static_assert(sizeof(Pass) == 8);

struct Action {
  Op op = Op::F;
  Pass pass[2]{};  // pass[0] is the action itself; for OverlapFB pass[0] is the F half, pass[1] the backward half

  static Action single(Op op, int stage, int microbatch) { return {op, {{op, stage, microbatch}, {}}}; }
  static Action overlap(Pass forward, Pass backward) { return {Op::OverlapFB, {forward, backward}}; }

  int stage() const { return pass[0].stage; }
  int microbatch() const { return pass[0].microbatch; }
  bool is_compute() const { return op <= Op::OverlapFB; }
  std::span<const Pass> passes() const { return {pass, op == Op::OverlapFB ? 2u : 1u}; }

  friend bool operator==(const Action& a, const Action& b) {
    return a.op == b.op && a.pass[0] == b.pass[0] && (a.op != Op::OverlapFB || a.pass[1] == b.pass[1]);
  }
};

std::string_view op_name(Op op);          // "F", "SEND_F", "OVERLAP_F_B", ...
std::string to_string(const Pass& pass);  // "0F3"
std::string to_string(const Action& action);

// Parses one action; throws Error naming the text and what was expected.
Action parse_action(std::string_view text);

inline bool is_backward(Op op) { return op == Op::I || op == Op::B; }

}  // namespace pipesim
