// Grid printer: fixed-width columns, one per rank; elided rows are summarised so errors on long
// schedules stay readable.
#include "schedules/grid.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pipesim {

std::string format_grid(const Schedule& schedule, const GridMarks& marks) {
  std::size_t steps = 0;
  for (auto& program : schedule.programs) steps = std::max(steps, program.size());
  auto label_width = std::to_string(steps == 0 ? 0 : steps - 1).size();

  std::vector<std::vector<std::string>> cells(schedule.programs.size());
  std::vector<std::size_t> widths(schedule.programs.size());
  for (std::size_t r = 0; r < cells.size(); ++r) {
    widths[r] = fmt::format("Rank {}", r).size();
    for (std::size_t s = 0; s < schedule.programs[r].size(); ++s) {
      auto text = to_string(schedule.programs[r][s]);
      if (marks.cells.count({static_cast<int>(r), static_cast<int>(s)})) text = "[" + text + "]";
      widths[r] = std::max(widths[r], text.size());
      cells[r].push_back(std::move(text));
    }
  }
  auto cell = [&](std::size_t rank, std::size_t step) -> std::string_view {
    return step < cells[rank].size() ? std::string_view(cells[rank][step]) : std::string_view();
  };

  auto shown = [&](std::size_t step) {
    if (marks.context_rows < 0) return true;
    auto near = [&](int row) {
      return row >= 0 && std::abs(static_cast<long>(step) - row) <= static_cast<long>(marks.context_rows);
    };
    if (near(marks.step)) return true;
    for (auto& [rank, row] : marks.cells)
      if (near(row)) return true;
    return false;
  };

  std::string out(label_width + 7, ' ');
  for (std::size_t r = 0; r < widths.size(); ++r)
    out += fmt::format("{:<{}}", fmt::format("Rank {}", r), widths[r] + (r + 1 < widths.size() ? 1 : 0));
  while (!out.empty() && out.back() == ' ') out.pop_back();
  out += '\n';
  bool elided = false;
  for (std::size_t s = 0; s < steps; ++s) {
    if (!shown(s)) {
      if (!elided) out += "...\n";
      elided = true;
      continue;
    }
    elided = false;
    std::string row = fmt::format("Step {:0{}}: ", s, label_width);
    for (std::size_t r = 0; r < widths.size(); ++r) {
      auto text = cell(r, s);
      row += text;
      row.append(widths[r] + 1 - text.size(), ' ');
    }
    while (!row.empty() && row.back() == ' ') row.pop_back();
    if (static_cast<int>(s) == marks.step) row += "  <-- blocked here";
    out += row + '\n';
  }
  return out;
}

}  // namespace pipesim
