// ZeroBubble ZB-H1 and ZB-H2 (Qi et al., ICLR 2024, arXiv 2401.10241), the handcrafted schedules:
// 1F1B with the backward split into I (input gradient) and W (weight gradient), W deferred to fill
// bubbles. Rank i of p, m micro-batches (docs/schedules.md §7):
//   warm-up of min(depth·(p-1-i), m) forwards; then for each remaining forward, F then I; then the
//   remaining I. After every I, run the oldest pending W if (#I done - #W done) > depth·i; finally the
//   W still pending. ZB-H1 has depth 1, ZB-H2 depth 2.
//   ZB-H1 bubble: (p-1)(F+I-W) when W <= F, W <= I, m >= p; peak activations p·M_B (as 1F1B);
//     rank i (1-indexed) holds (p-i+1)M_B + (i-1)M_W.
//   ZB-H2 bubble: (p-1)(F+I-2W) when W <= F, 2W <= I, m >= 2p-1; peak (2p-1)·M_B;
//     rank i (1-indexed) holds (2p-2i+1)M_B + (2i-2)M_W.
//   parameters: 1x
#include <algorithm>

#include "schedules/registry.hpp"

namespace pipesim {
namespace {

Schedule zb_h(std::string_view name, const GeneratorOptions& o, int depth) {
  require(name, basic_support(o));
  auto s = start_schedule(name, o, loop_layout(o.ranks, o.ranks));
  for (int r = 0; r < o.ranks; ++r) {
    auto& program = s.programs[static_cast<std::size_t>(r)];
    int forward = 0, input = 0, weight = 0;
    auto run_input = [&] {
      program.push_back(Action::single(Op::I, r, input++));
      if (input - weight > depth * r) program.push_back(Action::single(Op::W, r, weight++));
    };
    int warmup = std::min(depth * (o.ranks - 1 - r), o.microbatches);
    while (forward < warmup) program.push_back(Action::single(Op::F, r, forward++));
    while (forward < o.microbatches) {
      program.push_back(Action::single(Op::F, r, forward++));
      run_input();
    }
    while (input < o.microbatches) run_input();
    while (weight < o.microbatches) program.push_back(Action::single(Op::W, r, weight++));
  }
  return s;
}

}  // namespace

Schedule zb_h1(const GeneratorOptions& o) { return zb_h("zb-h1", o, 1); }
Schedule zb_h2(const GeneratorOptions& o) { return zb_h("zb-h2", o, 2); }

}  // namespace pipesim
