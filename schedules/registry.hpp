// The schedule registry: one line per generator. Tests iterate it, so a schedule added here is tested
// the day it lands. A generator is a pure function of (ranks, micro-batches, options): no I/O, no clock.
#pragma once

#include <span>
#include <string_view>

#include "schedules/schedule.hpp"

namespace pipesim {

struct GeneratorOptions {
  int ranks = 4;           // pipeline ranks (devices), e.g. 4
  int microbatches = 8;    // per step, e.g. 8
  int virtual_stages = 2;  // model chunks per rank; interleaved-1f1b only, e.g. 2
};

using Generator = Schedule (*)(const GeneratorOptions&);

struct ScheduleInfo {
  std::string_view name;         // "1f1b"
  std::string_view description;  // one line for `pipesim schedule --list`
  Generator generate;
  bool uses_virtual_stages;
};

std::span<const ScheduleInfo> schedule_registry();
const ScheduleInfo& find_schedule(std::string_view name);  // throws Error listing the known names

// Generates the named schedule (refusing impossible inputs with the constraint that failed).
Schedule generate_schedule(std::string_view name, const GeneratorOptions& options);

// For generators: an empty schedule with programs for every rank and one route through all stages.
Schedule start_schedule(std::string_view name, const GeneratorOptions& options, int stages,
                        std::vector<int> stage_to_rank);
// For generators: refuses options every schedule needs (ranks >= 1, micro-batches >= 1).
void require_basic(std::string_view name, const GeneratorOptions& options);

Schedule gpipe(const GeneratorOptions&);
Schedule one_f_one_b(const GeneratorOptions&);
Schedule interleaved_1f1b(const GeneratorOptions&);
Schedule zb_h1(const GeneratorOptions&);
Schedule zb_h2(const GeneratorOptions&);
Schedule zb_v(const GeneratorOptions&);
Schedule dualpipe(const GeneratorOptions&);
Schedule dualpipev(const GeneratorOptions&);

}  // namespace pipesim
