// DualPipe (DeepSeek-V3 report §3.2.1; deepseek-ai/DualPipe dualpipe.py step()). Micro-batches enter from
// both ends: 0..m/2-1 at rank 0 through stages 0..p-1, m/2..m-1 at rank p-1 through stages p..2p-1
// (stage p+j on rank p-1-j), so rank r holds stage r and stage 2p-1-r: two parameter copies.
// Forward and backward chunks of the two directions run as overlapped F&B pairs in the main phase.
//   bubble (DeepSeek-V3 Table 2, B = full backward): (p/2-1)(F&B+B-3W); under uniform costs it is the
//     largest per-rank idle time exactly when F = I (docs/closed-forms.md §7)
//   peak activations: p+1 micro-batches of one chunk per rank; parameters: 2x
//   requires p even, m even, m >= 2p
#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/generators/dualpipe_phases.hpp"
#include "schedules/registry.hpp"

namespace pipesim {

Support dualpipe_supports(const GeneratorOptions& o) {
  if (auto problem = basic_support(o)) return problem;
  int p = o.ranks, m = o.microbatches;
  if (p % 2 != 0)
    return SizeProblem{"ranks", fmt::format("ranks {} must be even (the two directions meet in the middle); try {} "
                                            "or {}, or dualpipev",
                                            p, p - 1 > 0 ? p - 1 : p + 1, p + 1)};
  if (m % 2 != 0 || m < 2 * p)
    return SizeProblem{"microbatches", fmt::format("microbatches {} must be even and >= 2 x ranks = {} (half per "
                                                   "direction); try {}",
                                                   m, 2 * p, std::max(2 * p, m + 1))};
  return std::nullopt;
}

// Two directions: stages 0..p-1 enter at rank 0, stages p..2p-1 at rank p-1 (the V placement's second half).
Layout dualpipe_layout(const GeneratorOptions& o) {
  int p = o.ranks;
  auto l = v_layout(p);
  std::vector<int> forward(static_cast<std::size_t>(p)), reverse(static_cast<std::size_t>(p));
  for (int k = 0; k < p; ++k) {
    forward[static_cast<std::size_t>(k)] = k;
    reverse[static_cast<std::size_t>(k)] = p + k;
  }
  l.routes = {forward, reverse};
  return l;
}

Schedule dualpipe(const GeneratorOptions& o) {
  require("dualpipe", dualpipe_supports(o));
  int p = o.ranks, m = o.microbatches;
  auto layout = dualpipe_layout(o);
  auto s = start_schedule("dualpipe", o, layout);
  std::vector<int> route_of(static_cast<std::size_t>(m), 0);
  for (int mb = m / 2; mb < m; ++mb) route_of[static_cast<std::size_t>(mb)] = 1;  // the second half enters at p-1
  set_routes(s, layout.routes, std::move(route_of));
  for (int r = 0; r < p; ++r) {
    DualPipeChunk down{r, 0}, up{2 * p - 1 - r, m / 2};  // directions entering at rank 0 / rank p-1
    bool second_half = r >= p / 2;
    dualpipe_program(p / 2, std::min(r, p - 1 - r), m / 2, second_half ? up : down, second_half ? down : up,
                     s.programs[static_cast<std::size_t>(r)]);
  }
  return s;
}

}  // namespace pipesim
