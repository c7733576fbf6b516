// The result both interpreters return, simulated or measured: what ran where and when. Metrics, the
// Chrome trace and comparison read only this.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "schedules/schedule.hpp"

namespace pipesim {

enum class Stream : std::uint8_t {
  Compute,  // the rank's program: F, I, W, B, F&B pairs, and the waits of RECV actions
  P2P,      // point-to-point transfers this rank sends (SEND_F / SEND_B on the wire)
  EP,       // expert-parallel all-to-all (dispatch / combine) inside the rank's actions
  DP,       // data-parallel gradient reduce-scatter, optimizer step, parameter all-gather
};

struct Span {
  int rank = 0;
  Stream stream = Stream::Compute;
  Action action;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::int64_t bytes = 0;  // transfers only
  int peer = -1;           // transfers: destination rank; RECV: source rank
  std::int64_t flow = -1;  // links a transfer to the RECV that takes it
  const char* label = nullptr;  // EP/DP spans: what ran ("dispatch+combine", "reduce-scatter", ...)
};

// What one operator of the runtime's stages computes, as it tells the recorder when it starts
// (docs/gpu-runtime.md §10): the work a hardware profile prices. Counts, never times.
enum class OpKind : std::uint8_t { None, Gemm, Attention, Memory, Comm };
struct OpWork {
  OpKind kind = OpKind::None;
  char pass = 'F';     // the pass it belongs to: 'F' forward, 'I' backward for inputs, 'W' for weights
  double flops = 0;    // GEMM: 2mnk; attention: causal FLOPs as docs/cost-model.md §2 counts them
  double bytes = 0;    // memory-bound operators: bytes read and written; communication: bytes sent to others
  double min_dim = 0;  // GEMM: the smallest of m, n and k
};
std::string_view op_kind_name(OpKind kind);  // "gemm", "attention", "memory", "comm", "" for None

inline constexpr std::uint32_t kHostStream = 0xffffffff;  // a CPU stage's operators

// One GPU kernel or copy a run recorded (CUPTI on the CUDA device), or one operator of a CPU stage, on its
// rank's clock like the spans: the kernel lanes beside the actions. Simulations have none.
struct KernelSpan {
  int rank = 0;
  std::uint32_t stream = 0;  // the GPU stream it ran on (CUPTI's id); kHostStream on the CPU
  std::string name;          // the kernel, or "memcpy HtoD" / "memcpy DtoH" / "memcpy DtoD"
  std::int64_t start_ns = 0, end_ns = 0;
  std::int64_t bytes = 0;    // copies only
  // The operator that launched it, when the stage tagged one: its number (unique per rank and step; an
  // operator may launch several kernels, which share it) and its work. -1: untagged.
  std::int64_t op = -1;
  OpWork work;
};

// Live activation memory of one rank from time_ns on (a step function).
struct MemorySample {
  int rank = 0;
  std::int64_t time_ns = 0;
  double activations = 0;  // micro-batch units: one forward through 1/ranks of the model (a 1F1B stage) = 1
  double bytes = 0;
};

struct Timeline {
  // What ran: the lowered schedule (name, sizes, stage -> rank, routes, programs). The same header
  // travels with run records and calibrations, so any of them can be simulated back. Shared, not copied:
  // every replica of a step and every timeline of a sweep point refer to one lowered schedule.
  std::shared_ptr<const Schedule> schedule;
  std::vector<Span> spans;            // sorted by (rank, stream, start)
  std::vector<MemorySample> memory;   // sorted by (rank, time)
  std::vector<KernelSpan> kernels;    // measured GPU work, sorted by (rank, start); empty when simulated
};

}  // namespace pipesim
