// What the runtime measures besides the actions themselves, all collective over a Comm (MPI processes or
// threads): the links (ping-pong latency and bandwidth, the expert-parallel all-to-all), each rank's clock
// against rank 0's, and a step's spans gathered on rank 0 on one clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/comm.hpp"
#include "traces/timeline.hpp"

namespace pipesim {

// Ping-pong between ranks 0 and 1 from and into `buffer` (`bytes` of the memory the actions send: host, or
// GPU memory that a comm stages): latency (ns, half the best of 50 round trips of 8 bytes) and bandwidth
// (GB/s = bytes per ns, from the best of 10 round trips of `bytes`, latency taken off). Every rank gets
// rank 0's figures; {0, 0} with one rank.
std::pair<double, double> ping_pong(Comm& comm, void* buffer, std::size_t bytes);

// The expert-parallel all-to-all (ranks with the same rank % pipeline_ranks form a group) with `bytes` to
// every peer: bytes each rank sends per ns, the best of 5, rank 0's figure on every rank.
double all_to_all_rate(Comm& comm, int pipeline_ranks, std::size_t bytes);

// Rank 0's clock minus this rank's (add it to this rank's times to read them on rank 0's clock), in ns, both read as time since `origin` (Cristian's algorithm: rank
// 0's reply was stamped mid-round-trip; the shortest of 10 round trips wins). 0 on rank 0.
std::int64_t clock_offset(Comm& comm, std::chrono::steady_clock::time_point origin);

// Gathers a step's spans and GPU kernels on rank 0: each rank's shifted by its clock offset, the first
// `pipeline_ranks` ranks' (the first replica stands for the pipeline), the whole step moved so its first
// span starts at 0 (kernels by the same amount). Others get {}.
struct GatheredStep {
  std::vector<Span> spans;
  std::vector<KernelSpan> kernels;
};
GatheredStep gather_step(Comm& comm, const std::vector<Span>& spans, const std::vector<KernelSpan>& kernels,
                         std::int64_t offset, int pipeline_ranks);

}  // namespace pipesim
