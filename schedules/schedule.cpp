// Schedule helpers: placements, routes, and the JSON and text writers.
#include "schedules/schedule.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pipesim {

bool Schedule::lowered() const {
  for (auto& program : programs)
    for (auto& action : program)
      if (!action.is_compute()) return true;
  return false;
}

std::size_t Schedule::action_count() const {
  std::size_t n = 0;
  for (auto& program : programs) n += program.size();
  return n;
}

std::vector<int> loop_placement(int ranks, int stages) {
  std::vector<int> placement(static_cast<std::size_t>(stages));
  for (int s = 0; s < stages; ++s) placement[static_cast<std::size_t>(s)] = s % ranks;
  return placement;
}

std::vector<int> v_placement(int ranks) {
  std::vector<int> placement(static_cast<std::size_t>(2 * ranks));
  for (int s = 0; s < 2 * ranks; ++s) placement[static_cast<std::size_t>(s)] = s < ranks ? s : 2 * ranks - 1 - s;
  return placement;
}

void set_single_route(Schedule& schedule) {
  std::vector<int> all(static_cast<std::size_t>(schedule.stages));
  for (int s = 0; s < schedule.stages; ++s) all[static_cast<std::size_t>(s)] = s;
  schedule.routes = {all};
  schedule.route_of.assign(static_cast<std::size_t>(schedule.microbatches), 0);
}

void infer_routes(Schedule& schedule) {
  std::vector<std::vector<bool>> visits(static_cast<std::size_t>(schedule.microbatches),
                                        std::vector<bool>(static_cast<std::size_t>(schedule.stages)));
  for (auto& program : schedule.programs)
    for (auto& action : program)
      for (auto& pass : action.passes())
        if (pass.microbatch >= 0 && pass.microbatch < schedule.microbatches && pass.stage >= 0 &&
            pass.stage < schedule.stages)
          visits[static_cast<std::size_t>(pass.microbatch)][static_cast<std::size_t>(pass.stage)] = true;
  std::map<std::vector<int>, int> index;
  schedule.routes.clear();
  schedule.route_of.clear();
  for (auto& seen : visits) {
    std::vector<int> route;
    for (int s = 0; s < schedule.stages; ++s)
      if (seen[static_cast<std::size_t>(s)]) route.push_back(s);
    auto [it, added] = index.try_emplace(route, static_cast<int>(schedule.routes.size()));
    if (added) schedule.routes.push_back(route);
    schedule.route_of.push_back(it->second);
  }
}

Schedule compute_only(const Schedule& schedule) {
  Schedule out = schedule;
  for (auto& program : out.programs)
    std::erase_if(program, [](const Action& a) { return !a.is_compute(); });
  return out;
}

nlohmann::ordered_json to_json(const Schedule& schedule) {
  nlohmann::ordered_json programs = nlohmann::ordered_json::array();
  for (auto& program : schedule.programs) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (auto& action : program) row.push_back(to_string(action));
    programs.push_back(std::move(row));
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["schedule"] = schedule.name;
  out["ranks"] = schedule.ranks;
  out["stages"] = schedule.stages;
  out["microbatches"] = schedule.microbatches;
  out["stage_to_rank"] = schedule.stage_to_rank;
  out["programs"] = std::move(programs);
  return out;
}

std::string to_text(const Schedule& schedule) {
  std::string out;
  for (std::size_t r = 0; r < schedule.programs.size(); ++r) {
    out += fmt::format("rank {}:", r);
    for (auto& action : schedule.programs[r]) {
      out += ' ';
      out += to_string(action);
    }
    out += '\n';
  }
  return out;
}

}  // namespace pipesim
