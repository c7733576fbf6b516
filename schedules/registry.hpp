// The schedule registry: one line per generator. Tests iterate it, so a schedule added here is tested
// the day it lands. A generator is a pure function of (ranks, micro-batches, options): no I/O, no clock.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "schedules/schedule.hpp"

namespace pipesim {

// The default of --virtual-stages, the one place it is written: interleaved 1F1B with 2 chunks per rank.
inline constexpr int kDefaultVirtualStages = 2;

struct GeneratorOptions {
  int ranks = 4;           // pipeline ranks (devices), e.g. 4
  int microbatches = 8;    // per step, e.g. 8
  int virtual_stages = kDefaultVirtualStages;  // model chunks per rank; interleaved-1f1b only, e.g. 2
};

// Why a schedule cannot be generated at a size, in the library's words ("microbatches 5 must be a multiple
// of ranks 4"); `field` names the option ("ranks", "microbatches" or "virtual_stages") so the CLI can add
// its flag.
struct SizeProblem {
  std::string field;
  std::string message;
};
using Support = std::optional<SizeProblem>;  // empty: supported

// Where a schedule's stages live and the orders micro-batches visit them, known without generating (a
// plan needs it to give each stage its layers): route k is the stage sequence of direction k.
struct Layout {
  int stages = 0;
  std::vector<int> stage_to_rank;
  std::vector<std::vector<int>> routes;
};

using Generator = Schedule (*)(const GeneratorOptions&);

struct ScheduleInfo {
  std::string_view name;         // "1f1b"
  std::string_view description;  // one line for `pipesim schedule --list`
  Generator generate;            // throws Error with supports()'s message on an unsupported size
  Support (*supports)(const GeneratorOptions&);
  Layout (*layout)(const GeneratorOptions&);  // needs only ranks and virtual_stages
  bool uses_virtual_stages;
};

std::span<const ScheduleInfo> schedule_registry();
const ScheduleInfo& find_schedule(std::string_view name);  // throws Error listing the known names

// Generates the named schedule (refusing impossible inputs with the constraint that failed).
Schedule generate_schedule(std::string_view name, const GeneratorOptions& options);

// For generators: an empty schedule with programs for every rank and the layout's routes (every
// micro-batch on route 0).
Schedule start_schedule(std::string_view name, const GeneratorOptions& options, const Layout& layout);
// For generators: throws Error("<name>: <message>") when `support` holds a problem.
void require(std::string_view name, const Support& support);
// The sizes every schedule needs (ranks >= 1, micro-batches >= 1, within the supported bounds).
Support basic_support(const GeneratorOptions& options);
// The two placements: one route through `stages` stages looping over the ranks, and the V of 2·ranks stages.
Layout loop_layout(int ranks, int stages);
Layout v_layout(int ranks);

// Each generator file: the generator, its supported sizes and its layout.
Schedule gpipe(const GeneratorOptions&);
Schedule one_f_one_b(const GeneratorOptions&);
Schedule interleaved_1f1b(const GeneratorOptions&);
Support interleaved_1f1b_supports(const GeneratorOptions&);
Layout interleaved_1f1b_layout(const GeneratorOptions&);
Schedule zb_h1(const GeneratorOptions&);
Schedule zb_h2(const GeneratorOptions&);
Schedule zb_v(const GeneratorOptions&);
Schedule dualpipe(const GeneratorOptions&);
Support dualpipe_supports(const GeneratorOptions&);
Layout dualpipe_layout(const GeneratorOptions&);
Schedule dualpipev(const GeneratorOptions&);
Support dualpipev_supports(const GeneratorOptions&);

}  // namespace pipesim
