// The step×rank grid, like the schedule figures of the papers and PyTorch's _format_pipeline_order:
// row k holds the k-th action of every rank. Errors print it with the failing step and actions marked.
#pragma once

#include <set>
#include <string>
#include <utility>

#include "schedules/schedule.hpp"

namespace pipesim {

struct GridMarks {
  int step = -1;                                 // row to flag with "<-- blocked here"; -1 for none
  std::set<std::pair<int, int>> cells;           // (rank, step) cells shown as [action]
  int context_rows = -1;                         // show only rows within this distance of marked rows; -1: all
};

std::string format_grid(const Schedule& schedule, const GridMarks& marks = {});

}  // namespace pipesim
