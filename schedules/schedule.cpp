// Schedule helpers: placements, routes, and the JSON and text writers.
#include "schedules/schedule.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/json.hpp"
#include "schedules/registry.hpp"

namespace pipesim {

bool Schedule::lowered() const {
  for (auto& program : programs)
    for (auto& action : program)
      if (!action.is_compute()) return true;
  return false;
}

Schedule Schedule::without_programs() const {
  Schedule out;
  out.name = name;
  out.ranks = ranks;
  out.stages = stages;
  out.microbatches = microbatches;
  out.stage_to_rank = stage_to_rank;
  out.routes = routes;
  out.route_of = route_of;
  out.stage_position_ = stage_position_;
  out.stage_route_length_ = stage_route_length_;
  out.programs.resize(programs.size());
  return out;
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

std::vector<int> pair_partners(const std::vector<int>& stage_to_rank, int ranks) {
  std::vector<std::vector<int>> held(static_cast<std::size_t>(ranks));
  for (std::size_t s = 0; s < stage_to_rank.size(); ++s)
    held[static_cast<std::size_t>(stage_to_rank[s])].push_back(static_cast<int>(s));
  std::vector<int> partner(stage_to_rank.size(), -1);
  for (auto& mates : held) {
    if (mates.size() == 1) partner[static_cast<std::size_t>(mates[0])] = mates[0];
    if (mates.size() != 2) continue;
    partner[static_cast<std::size_t>(mates[0])] = mates[1];
    partner[static_cast<std::size_t>(mates[1])] = mates[0];
  }
  return partner;
}

void set_routes(Schedule& schedule, std::vector<std::vector<int>> routes, std::vector<int> route_of) {
  schedule.routes = std::move(routes);
  schedule.route_of = std::move(route_of);
  auto stages = static_cast<std::size_t>(std::max(schedule.stages, 0));
  schedule.stage_position_.assign(stages, -1);
  schedule.stage_route_length_.assign(stages, 1);
  for (auto& route : schedule.routes)
    for (std::size_t k = 0; k < route.size(); ++k) {
      auto st = static_cast<std::size_t>(route[k]);
      if (route[k] < 0 || st >= stages || schedule.stage_position_[st] >= 0) continue;
      schedule.stage_position_[st] = static_cast<int>(k);
      schedule.stage_route_length_[st] = static_cast<int>(route.size());
    }
}

void set_single_route(Schedule& schedule) {
  std::vector<int> all(static_cast<std::size_t>(schedule.stages));
  for (int s = 0; s < schedule.stages; ++s) all[static_cast<std::size_t>(s)] = s;
  set_routes(schedule, {all}, std::vector<int>(static_cast<std::size_t>(schedule.microbatches), 0));
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
  std::vector<std::vector<int>> routes;
  std::vector<int> route_of;
  for (auto& seen : visits) {
    std::vector<int> route;
    for (int s = 0; s < schedule.stages; ++s)
      if (seen[static_cast<std::size_t>(s)]) route.push_back(s);
    auto [it, added] = index.try_emplace(route, static_cast<int>(routes.size()));
    if (added) routes.push_back(route);
    route_of.push_back(it->second);
  }
  set_routes(schedule, std::move(routes), std::move(route_of));
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
  out["routes"] = schedule.routes;
  out["route_of"] = schedule.route_of;
  return out;
}

Schedule schedule_from_json(const JsonReader& json) {
  json.expect_object();
  Schedule s;
  s.name = json.required<std::string>("schedule");
  // A registry schedule's name, or what pipesim names schedules read from a CSV ("csv") or a trace
  // ("imported"): another name is a typo or a hand edit that no command could regenerate.
  bool known = s.name == "csv" || s.name == "imported";
  for (auto& info : schedule_registry()) known = known || s.name == info.name;
  if (!known)
    json.child("schedule").fail(fmt::format("unknown schedule '{}' (a registry name, or csv / imported for a schedule "
                                            "read from a file or a trace)",
                                            s.name));
  s.ranks = json.required<int>("ranks");
  s.stages = json.required<int>("stages");
  s.microbatches = json.required<int>("microbatches");
  // The limits of the generators (schedules/registry.cpp), so a bad file cannot ask for huge tables.
  if (s.ranks < 1 || s.ranks > 4096) json.child("ranks").fail(fmt::format("{} is not in 1..4096", s.ranks));
  if (s.stages < 1 || s.stages > 65536) json.child("stages").fail(fmt::format("{} is not in 1..65536", s.stages));
  if (s.microbatches < 1 || s.microbatches > 65536)
    json.child("microbatches").fail(fmt::format("{} is not in 1..65536", s.microbatches));
  s.stage_to_rank = json.required<std::vector<int>>("stage_to_rank");
  auto programs = json.child("programs");
  for (auto& row : programs.elements()) {
    auto& program = s.programs.emplace_back();
    for (auto& cell : row.elements()) {
      auto text = cell.get<std::string>();
      try {
        program.push_back(parse_action(text));
      } catch (const Error& e) {
        cell.fail(e.what());
      }
    }
  }
  if (json.has("routes") && json.has("route_of")) {
    set_routes(s, json.required<std::vector<std::vector<int>>>("routes"), json.required<std::vector<int>>("route_of"));
  } else {
    infer_routes(s);
  }
  return s;
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
