// The registry of schedule generators and the helpers every generator uses.
#include "schedules/registry.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

Layout loop(const GeneratorOptions& o) { return loop_layout(o.ranks, o.ranks); }
Layout v(const GeneratorOptions& o) { return v_layout(o.ranks); }

constexpr std::array<ScheduleInfo, 8> kRegistry{{
    {"gpipe", "GPipe: all forwards, then all backwards (PyTorch ScheduleGPipe order)", gpipe, basic_support, loop,
     false},
    {"1f1b", "1F1B (PipeDream-Flush) as Megatron-LM orders it: warm-up, one forward one backward, cool-down",
     one_f_one_b, basic_support, loop, false},
    {"interleaved-1f1b", "interleaved 1F1B, v model chunks per rank, Megatron-LM order (--virtual-stages)",
     interleaved_1f1b, interleaved_1f1b_supports, interleaved_1f1b_layout, true},
    {"zb-h1", "ZeroBubble ZB-H1: 1F1B with split backward, W deferred; 1F1B memory, bubble (p-1)(F+I-W)", zb_h1,
     basic_support, loop, false},
    {"zb-h2", "ZeroBubble ZB-H2: deeper warm-up, W fills the tail; (2p-1) activations, bubble (p-1)(F+I-2W)",
     zb_h2, basic_support, loop, false},
    {"zb-v", "ZeroBubble ZB-V: 2 chunks per rank in a V, F-I-W steady state (PyTorch ScheduleZBVZeroBubble)",
     zb_v, basic_support, v, false},
    {"dualpipe", "DeepSeek DualPipe: micro-batches from both ends, overlapped F&B pairs, 2 parameter copies",
     dualpipe, dualpipe_supports, dualpipe_layout, false},
    {"dualpipev", "DualPipeV: DualPipe cut in half into a V on ranks devices (deepseek-ai dualpipev.py)",
     dualpipev, dualpipev_supports, v, false},
}};

}  // namespace

std::span<const ScheduleInfo> schedule_registry() { return kRegistry; }

const ScheduleInfo& find_schedule(std::string_view name) {
  for (auto& info : kRegistry)
    if (info.name == name) return info;
  std::vector<std::string_view> names;
  for (auto& info : kRegistry) names.push_back(info.name);
  throw Error(fmt::format("unknown schedule '{}'; known schedules: {}", name, fmt::join(names, ", ")));
}

Schedule generate_schedule(std::string_view name, const GeneratorOptions& options) {
  return find_schedule(name).generate(options);
}

Support basic_support(const GeneratorOptions& o) {
  if (o.ranks < 1) return SizeProblem{"ranks", fmt::format("ranks {} must be >= 1 (a pipeline needs a rank)", o.ranks)};
  if (o.microbatches < 1)
    return SizeProblem{"microbatches",
                       fmt::format("microbatches {} must be >= 1 (a step needs a micro-batch)", o.microbatches)};
  // Bounds keep the stage x micro-batch tables of validation in memory and node ids in 32 bits.
  if (o.ranks > 4096) return SizeProblem{"ranks", fmt::format("ranks {} is beyond the supported size (at most 4096)", o.ranks)};
  if (o.microbatches > 65536)
    return SizeProblem{"microbatches",
                       fmt::format("microbatches {} is beyond the supported size (at most 65536)", o.microbatches)};
  if (static_cast<long>(o.ranks) * o.microbatches > (1L << 22))
    return SizeProblem{"microbatches", fmt::format("ranks {} x microbatches {} is beyond the supported size (at most "
                                                   "4194304 rank x micro-batch pairs)",
                                                   o.ranks, o.microbatches)};
  return std::nullopt;
}

void require(std::string_view name, const Support& support) {
  if (support) throw Error(fmt::format("{}: {}", name, support->message));
}

Layout loop_layout(int ranks, int stages) {
  Layout l{stages, loop_placement(ranks, stages), {std::vector<int>(static_cast<std::size_t>(stages))}};
  for (int s = 0; s < stages; ++s) l.routes[0][static_cast<std::size_t>(s)] = s;
  return l;
}

Layout v_layout(int ranks) {
  auto l = loop_layout(ranks, 2 * ranks);
  l.stage_to_rank = v_placement(ranks);
  return l;
}

Schedule start_schedule(std::string_view name, const GeneratorOptions& options, const Layout& layout) {
  Schedule s;
  s.name = std::string(name);
  s.ranks = options.ranks;
  s.stages = layout.stages;
  s.microbatches = options.microbatches;
  s.stage_to_rank = layout.stage_to_rank;
  s.programs.resize(static_cast<std::size_t>(options.ranks));
  // Room for an F, I and W of every stage a rank holds and every micro-batch, so no program is copied as it
  // grows (generators that fuse B or pairs use less; pages never written cost no memory).
  std::vector<std::size_t> stages_on(static_cast<std::size_t>(options.ranks));
  for (int rank : layout.stage_to_rank)
    if (rank >= 0 && rank < options.ranks) ++stages_on[static_cast<std::size_t>(rank)];
  for (std::size_t r = 0; r < stages_on.size(); ++r)
    s.programs[r].reserve(3 * stages_on[r] * static_cast<std::size_t>(std::max(options.microbatches, 0)));
  set_routes(s, layout.routes, std::vector<int>(static_cast<std::size_t>(options.microbatches), 0));
  return s;
}

}  // namespace pipesim
