// ZeroBubble ZB-V (Qi et al., arXiv 2401.10241 §6), in the order of PyTorch's ScheduleZBVZeroBubble
// (_calculate_single_rank_operations). The model is cut into 2p chunks in a V: rank r holds stages r and
// 2p-1-r, so each micro-batch enters and leaves on rank 0. Warm-up fills chunk 0, then chunk 1 runs
// F-I-W; the steady state alternates F0 I0 W0 F1 I1 W1; the cool-down defers W. The order is built for
// max(m, 2p-1) micro-batches and the passes of micro-batches >= m are dropped, as PyTorch does.
//   bubble: zero when F = I = W and m >= 2p-1 (no communication); 1F1B's peak activation memory
//   (2p chunk activations of half size = p full-stage activations on rank 0); parameters: 1x
#include <algorithm>

#include "schedules/registry.hpp"

namespace pipesim {

Schedule zb_v(const GeneratorOptions& o) {
  require("zb-v", basic_support(o));
  int p = o.ranks, m = o.microbatches, n = std::max(2 * p - 1, m);
  auto s = start_schedule("zb-v", o, v_layout(p));
  for (int r = 0; r < p; ++r) {
    auto& program = s.programs[static_cast<std::size_t>(r)];
    int chunk0 = r, chunk1 = 2 * p - 1 - r;
    int f0 = 0, f1 = 0, b0 = 0, b1 = 0;
    auto add = [&](Op op, int stage, int& counter) {
      if (counter < m) program.push_back(Action::single(op, stage, counter));
      ++counter;
    };
    auto add_iw = [&](int stage, int& counter) {
      int mb = counter;
      add(Op::I, stage, mb);
      add(Op::W, stage, counter);
    };
    for (int i = 0; i < 2 * (p - r) - 1; ++i) add(Op::F, chunk0, f0);
    for (int i = 0; i < r; ++i) {
      add(Op::F, chunk1, f1);
      add(Op::F, chunk0, f0);
    }
    for (int i = 0; i < p - r; ++i) {
      add(Op::F, chunk1, f1);
      add_iw(chunk1, b1);
    }
    while (f1 < f0 || f0 < n) {
      if (f0 < n) add(Op::F, chunk0, f0);
      add_iw(chunk0, b0);
      add(Op::F, chunk1, f1);
      add_iw(chunk1, b1);
    }
    int w0 = b0, w1 = b1;
    for (int i = 0; i < r; ++i) {
      add(Op::I, chunk0, b0);
      add(Op::I, chunk1, b1);
    }
    for (int i = 0; i < p - r; ++i) {
      add(Op::I, chunk0, b0);
      add(Op::W, chunk0, w0);
    }
    while (w1 < b1) add(Op::W, chunk1, w1);
    while (w0 < b0) add(Op::W, chunk0, w0);
  }
  return s;
}

}  // namespace pipesim
