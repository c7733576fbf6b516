// The registry of schedule generators and the helpers every generator uses.
#include "schedules/registry.hpp"

#include <array>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

constexpr std::array<ScheduleInfo, 8> kRegistry{{
    {"gpipe", "GPipe: all forwards, then all backwards (PyTorch ScheduleGPipe order)", gpipe, false},
    {"1f1b", "1F1B (PipeDream-Flush) as Megatron-LM orders it: warm-up, one forward one backward, cool-down",
     one_f_one_b, false},
    {"interleaved-1f1b", "interleaved 1F1B, v model chunks per rank, Megatron-LM order (--virtual-stages)",
     interleaved_1f1b, true},
    {"zb-h1", "ZeroBubble ZB-H1: 1F1B with split backward, W deferred; 1F1B memory, bubble (p-1)(F+I-W)", zb_h1,
     false},
    {"zb-h2", "ZeroBubble ZB-H2: deeper warm-up, W fills the tail; (2p-1) activations, bubble (p-1)(F+I-2W)",
     zb_h2, false},
    {"zb-v", "ZeroBubble ZB-V: 2 chunks per rank in a V, F-I-W steady state (PyTorch ScheduleZBVZeroBubble)",
     zb_v, false},
    {"dualpipe", "DeepSeek DualPipe: micro-batches from both ends, overlapped F&B pairs, 2 parameter copies",
     dualpipe, false},
    {"dualpipev", "DualPipeV: DualPipe cut in half into a V on ranks devices (deepseek-ai dualpipev.py)",
     dualpipev, false},
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

void require_basic(std::string_view name, const GeneratorOptions& options) {
  if (options.ranks < 1)
    throw Error(fmt::format("{}: --pp is {}; a pipeline needs at least 1 rank", name, options.ranks));
  if (options.microbatches < 1)
    throw Error(fmt::format("{}: --microbatches is {}; a step needs at least 1 micro-batch", name,
                            options.microbatches));
  // Bounds keep the stage x micro-batch tables of validation in memory and node ids in 32 bits.
  if (options.ranks > 4096 || options.microbatches > 65536 ||
      static_cast<long>(options.ranks) * options.microbatches > (1L << 22))
    throw Error(fmt::format("{}: --pp {} with --microbatches {} is beyond the supported size (at most 4096 ranks, "
                            "65536 micro-batches, and 4194304 rank x micro-batch pairs)",
                            name, options.ranks, options.microbatches));
}

Schedule start_schedule(std::string_view name, const GeneratorOptions& options, int stages,
                        std::vector<int> stage_to_rank) {
  Schedule s;
  s.name = std::string(name);
  s.ranks = options.ranks;
  s.stages = stages;
  s.microbatches = options.microbatches;
  s.stage_to_rank = std::move(stage_to_rank);
  s.programs.resize(static_cast<std::size_t>(options.ranks));
  set_single_route(s);
  return s;
}

}  // namespace pipesim
