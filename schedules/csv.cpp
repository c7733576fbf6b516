// CSV import and export (see csv.hpp). The reader takes RFC 4180 quoting and CRLF or LF line ends, as
// Python's csv module writes them.
#include "schedules/csv.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

// Splits CSV text into rows of cells. Trailing empty lines are dropped.
std::vector<std::vector<std::string>> split_csv(std::string_view text, std::string_view source) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  std::size_t line = 1, i = 0;
  bool row_started = false;
  while (i < text.size()) {
    char c = text[i];
    if (c == '"' && cell.empty()) {
      std::size_t start_line = line;
      ++i;
      for (;;) {
        if (i >= text.size())
          throw Error(fmt::format("{} line {}: a quoted cell is never closed (missing '\"')", source, start_line));
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            cell += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        cell += text[i++];
      }
      row_started = true;
      continue;
    }
    if (c == ',') {
      row.push_back(std::move(cell));
      cell.clear();
      row_started = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (row_started || !cell.empty()) row.push_back(std::move(cell));
      rows.push_back(std::move(row));
      row.clear();
      cell.clear();
      row_started = false;
      ++line;
    } else {
      cell += c;
    }
    ++i;
  }
  if (row_started || !cell.empty()) {
    row.push_back(std::move(cell));
    rows.push_back(std::move(row));
  }
  while (!rows.empty() && rows.back().empty()) rows.pop_back();
  return rows;
}

bool blank(std::string_view cell) {
  return std::all_of(cell.begin(), cell.end(), [](char c) { return c == ' ' || c == '\t'; });
}

// PyTorch's runtime CSVs also hold FSDP and gradient-reduction bookkeeping (`0UNSHARD`, `0RESHARD`,
// `0REDUCE_GRAD`): no pipeline pass, nothing to schedule.
bool bookkeeping(std::string_view cell) {
  while (!cell.empty() && (cell.front() == ' ' || (cell.front() >= '0' && cell.front() <= '9'))) cell.remove_prefix(1);
  while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\r')) cell.remove_suffix(1);
  return cell == "UNSHARD" || cell == "RESHARD" || cell == "REDUCE_GRAD";
}

}  // namespace

Schedule schedule_from_programs(std::vector<std::vector<Action>> programs, std::string_view source) {
  Schedule s;
  s.name = "csv";
  s.ranks = static_cast<int>(programs.size());
  s.programs = std::move(programs);
  int max_stage = -1, max_microbatch = -1;
  for (auto& program : s.programs)
    for (auto& action : program)
      for (auto& pass : action.passes()) {
        // Callers parse non-negative numbers; a caller that did not would index out of bounds later.
        if (pass.stage < 0 || pass.microbatch < 0)
          throw Error(fmt::format("{}: {} names a negative stage or micro-batch", source, to_string(pass)));
        max_stage = std::max(max_stage, pass.stage);
        max_microbatch = std::max(max_microbatch, pass.microbatch);
      }
  if (max_stage < 0) throw Error(fmt::format("{}: no actions in any row", source));
  if ((static_cast<long>(max_stage) + 1) * (static_cast<long>(max_microbatch) + 1) > (1L << 24))
    throw Error(fmt::format("{}: {} stages x {} micro-batches is beyond the supported size (16777216 pairs)", source,
                            static_cast<long>(max_stage) + 1, static_cast<long>(max_microbatch) + 1));
  s.stages = max_stage + 1;
  s.microbatches = max_microbatch + 1;
  s.stage_to_rank.assign(static_cast<std::size_t>(s.stages), -1);
  for (std::size_t r = 0; r < s.programs.size(); ++r)
    for (auto& action : s.programs[r])
      for (auto& pass : action.passes()) {
        auto& owner = s.stage_to_rank[static_cast<std::size_t>(pass.stage)];
        if (owner >= 0 && owner != static_cast<int>(r))
          throw Error(fmt::format("{}: stage {} appears on rank {} and on rank {} (rows {} and {}); a stage belongs "
                                  "to one rank",
                                  source, pass.stage, owner, r, owner + 1, r + 1));
        owner = static_cast<int>(r);
      }
  for (std::size_t st = 0; st < s.stage_to_rank.size(); ++st)
    if (s.stage_to_rank[st] < 0)
      throw Error(fmt::format("{}: stage {} appears in no row, but stages up to {} do; stages must be numbered "
                              "0..{} without gaps",
                              source, st, s.stages - 1, s.stages - 1));
  infer_routes(s);
  return s;
}

std::string to_csv(const Schedule& schedule) {
  std::string out;
  for (auto& program : schedule.programs) {
    for (std::size_t i = 0; i < program.size(); ++i) {
      if (i) out += ',';
      out += to_string(program[i]);
    }
    out += '\n';
  }
  return out;
}

Schedule from_csv(std::string_view text, std::string_view source) {
  auto rows = split_csv(text, source);
  if (rows.empty()) throw Error(fmt::format("{}: no rows; expected one row of actions per rank", source));
  Schedule s;
  s.name = "csv";
  s.ranks = static_cast<int>(rows.size());
  s.programs.resize(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      if (blank(rows[r][c]) || bookkeeping(rows[r][c])) continue;
      try {
        s.programs[r].push_back(parse_action(rows[r][c]));
      } catch (const Error& e) {
        throw Error(fmt::format("{} line {} (rank {}), cell {}: {}", source, r + 1, r, c + 1, e.what()));
      }
    }
  }
  return schedule_from_programs(std::move(s.programs), source);
}

}  // namespace pipesim
