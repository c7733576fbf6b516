// 1F1B (PipeDream-Flush; Narayanan et al., SC21) in Megatron-LM's order
// (forward_backward_pipelining_without_interleaving): rank r runs min(p-1-r, m) warm-up forwards, then
// alternates one forward and one backward, then drains the remaining backwards.
//   bubble (uniform costs, no communication): (p-1)(F+B) on every rank, any m >= 1
//   peak activations: min(p-r, m) micro-batches on rank r (p on rank 0)
//   parameters: 1x
#include <algorithm>

#include "schedules/registry.hpp"

namespace pipesim {

Schedule one_f_one_b(const GeneratorOptions& o) {
  require("1f1b", basic_support(o));
  auto s = start_schedule("1f1b", o, loop_layout(o.ranks, o.ranks));
  for (int r = 0; r < o.ranks; ++r) {
    auto& program = s.programs[static_cast<std::size_t>(r)];
    int warmup = std::min(o.ranks - 1 - r, o.microbatches);
    int forward = 0, backward = 0;
    for (int i = 0; i < warmup; ++i) program.push_back(Action::single(Op::F, r, forward++));
    for (int i = 0; i < o.microbatches - warmup; ++i) {
      program.push_back(Action::single(Op::F, r, forward++));
      program.push_back(Action::single(Op::B, r, backward++));
    }
    while (backward < o.microbatches) program.push_back(Action::single(Op::B, r, backward++));
  }
  return s;
}

}  // namespace pipesim
