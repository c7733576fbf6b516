// DualPipeV ("cut-in-half" DualPipe, Sea AI Lab; deepseek-ai/DualPipe dualpipev.py step()). p devices
// hold 2p stages in a V (rank r: stages r and 2p-1-r); every micro-batch enters and leaves on rank 0.
//   bubble (DualPipe README, B = full backward): (p-1)(F&B+B-3W) with p devices = PP/2 of DualPipe's
//     notation, exactly the largest per-rank idle time when F = I (docs/closed-forms.md §7)
//   peak activations: 2p+1 chunk activations per device (PP+1 in stage units); parameters: 2x chunks
//   requires m >= 2p
#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/generators/dualpipe_phases.hpp"
#include "schedules/registry.hpp"

namespace pipesim {

Support dualpipev_supports(const GeneratorOptions& o) {
  if (auto problem = basic_support(o)) return problem;
  if (o.microbatches < 2 * o.ranks)
    return SizeProblem{"microbatches", fmt::format("microbatches {} must be >= 2 x ranks = {} (ranks {})",
                                                   o.microbatches, 2 * o.ranks, o.ranks)};
  return std::nullopt;
}

Schedule dualpipev(const GeneratorOptions& o) {
  require("dualpipev", dualpipev_supports(o));
  int p = o.ranks, m = o.microbatches;
  auto s = start_schedule("dualpipev", o, v_layout(p));
  for (int r = 0; r < p; ++r)
    dualpipe_program(p, r, m, {r, 0}, {2 * p - 1 - r, 0}, s.programs[static_cast<std::size_t>(r)]);
  return s;
}

}  // namespace pipesim
