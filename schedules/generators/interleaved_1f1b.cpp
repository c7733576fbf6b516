// Interleaved 1F1B (Narayanan et al., SC21) in Megatron-LM's order
// (megatron/core/pipeline_parallel/schedules.py: forward_backward_pipelining_with_interleaving,
// get_schedule_table, get_pp_rank_microbatches; microbatch_group_size_per_vp_stage = p, its default).
// Rank r holds v chunks, chunk c being stage c·p + r. Virtual micro-batch k walks a table that takes
// groups of p micro-batches through chunk 0, then chunk 1, ...; backward k visits the chunks in reverse.
// Warm-up: (p-r-1)·2 + (v-1)·p forwards (capped at m·v), then one forward one backward, then cool-down.
//   bubble (uniform costs, no communication): (p-1)(f+b) per rank with f, b the per-chunk costs, i.e.
//     (1/v)(p-1)/m of the ideal time
//   peak activations: (p-r-1)·2 + (v-1)·p + 1 chunk activations on rank r; parameters: 1x (v chunks)
//   requires m to be a multiple of p (Megatron: the last group of p micro-batches must be full)
#include <algorithm>

#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/registry.hpp"

namespace pipesim {

Support interleaved_1f1b_supports(const GeneratorOptions& o) {
  if (auto problem = basic_support(o)) return problem;
  int p = o.ranks, m = o.microbatches, v = o.virtual_stages;
  if (v < 1 || v > 64)
    return SizeProblem{"virtual_stages", fmt::format("virtual_stages {} must be 1 to 64 model chunks per rank", v)};
  if (m % p != 0)
    return SizeProblem{"microbatches", fmt::format("microbatches {} must be a multiple of ranks {} (Megatron order: "
                                                   "the last group of p micro-batches must be full); try {} or {}",
                                                   m, p, std::max(p, m / p * p), (m / p + 1) * p)};
  return std::nullopt;
}

Layout interleaved_1f1b_layout(const GeneratorOptions& o) {
  return loop_layout(o.ranks, o.ranks * o.virtual_stages);
}

Schedule interleaved_1f1b(const GeneratorOptions& o) {
  require("interleaved-1f1b", interleaved_1f1b_supports(o));
  int p = o.ranks, m = o.microbatches, v = o.virtual_stages;
  auto s = start_schedule("interleaved-1f1b", o, interleaved_1f1b_layout(o));
  struct Entry {
    int microbatch, chunk;
  };
  std::vector<Entry> table;  // get_schedule_table with groups of p micro-batches
  for (int group = 0; group < m; group += p)
    for (int chunk = 0; chunk < v; ++chunk)
      for (int mb = group; mb < std::min(group + p, m); ++mb) table.push_back({mb, chunk});
  int total = m * v;
  for (int r = 0; r < p; ++r) {
    auto& program = s.programs[static_cast<std::size_t>(r)];
    auto forward = [&](int k) {
      auto e = table[static_cast<std::size_t>(k)];
      program.push_back(Action::single(Op::F, e.chunk * p + r, e.microbatch));
    };
    auto backward = [&](int k) {
      auto e = table[static_cast<std::size_t>(k)];
      program.push_back(Action::single(Op::B, (v - 1 - e.chunk) * p + r, e.microbatch));
    };
    int warmup = std::min((p - r - 1) * 2 + (v - 1) * p, total);
    for (int k = 0; k < warmup; ++k) forward(k);
    for (int k = 0; k < total - warmup; ++k) {
      forward(k + warmup);
      backward(k);
    }
    for (int k = total - warmup; k < total; ++k) backward(k);
  }
  return s;
}

}  // namespace pipesim
