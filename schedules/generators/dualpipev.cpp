// DualPipeV ("cut-in-half" DualPipe, Sea AI Lab; deepseek-ai/DualPipe dualpipev.py step()). p devices
// hold 2p stages in a V (rank r: stages r and 2p-1-r); every micro-batch enters and leaves on rank 0.
//   bubble (DualPipe README, B = full backward): (p-1)(F&B+B-3W) with p devices = PP/2 of DualPipe's
//     notation, exactly the largest per-rank idle time when F = I (REFERENCE.md §4)
//   peak activations: 2p+1 chunk activations per device (PP+1 in stage units); parameters: 2x chunks
//   requires m >= 2p
#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/generators/dualpipe_phases.hpp"
#include "schedules/registry.hpp"

namespace pipesim {

Schedule dualpipev(const GeneratorOptions& o) {
  require_basic("dualpipev", o);
  int p = o.ranks, m = o.microbatches;
  if (m < 2 * p)
    throw Error(fmt::format("dualpipev needs at least 2 x ranks micro-batches: --pp {} needs --microbatches >= {}, "
                            "got {}",
                            p, 2 * p, m));
  auto s = start_schedule("dualpipev", o, 2 * p, v_placement(p));
  for (int r = 0; r < p; ++r)
    s.programs[static_cast<std::size_t>(r)] = dualpipe_program(p, r, m, {r, 0}, {2 * p - 1 - r, 0});
  return s;
}

}  // namespace pipesim
