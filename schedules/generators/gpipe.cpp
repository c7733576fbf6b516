// GPipe (Huang et al., 2019), in PyTorch ScheduleGPipe's order: every forward, then every backward in
// micro-batch order.
//   bubble (uniform costs, no communication): (p-1)(F+B) per rank
//   peak activations: m micro-batches on every rank (all forwards are live before the first backward)
//   parameters: 1x
#include "schedules/registry.hpp"

namespace pipesim {

Schedule gpipe(const GeneratorOptions& o) {
  require("gpipe", basic_support(o));
  auto s = start_schedule("gpipe", o, loop_layout(o.ranks, o.ranks));
  for (int r = 0; r < o.ranks; ++r) {
    auto& program = s.programs[static_cast<std::size_t>(r)];
    for (int mb = 0; mb < o.microbatches; ++mb) program.push_back(Action::single(Op::F, r, mb));
    for (int mb = 0; mb < o.microbatches; ++mb) program.push_back(Action::single(Op::B, r, mb));
  }
  return s;
}

}  // namespace pipesim
