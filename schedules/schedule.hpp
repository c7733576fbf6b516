// A schedule: programs[rank] (actions in execution order), which rank holds each stage, and the order in
// which each micro-batch visits stages (DualPipe has two directions; V schedules visit a rank twice).
// Generators build it, validate() checks it, lower() adds communication; simulator and runtime read it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "schedules/action.hpp"

namespace pipesim {

struct Schedule {
  std::string name;          // registry name, or "csv" for an imported schedule
  int ranks = 0;             // pipeline ranks (devices)
  int stages = 0;            // model chunks over the whole pipeline
  int microbatches = 0;
  std::vector<int> stage_to_rank;          // [stage] -> rank
  std::vector<std::vector<int>> routes;    // distinct stage sequences a micro-batch follows, forward order
  std::vector<int> route_of;               // [microbatch] -> index into routes
  std::vector<std::vector<Action>> programs;  // [rank] -> actions in execution order

  const std::vector<int>& route(int microbatch) const { return routes[route_of[microbatch]]; }
  bool lowered() const;  // holds SEND/RECV actions
  std::size_t action_count() const;
};

// Stage placements. Loop: stage s on rank s % ranks (1F1B, interleaved). V: rank r holds stages r and
// 2·ranks−1−r, so a micro-batch enters and leaves on rank 0 (ZB-V, DualPipeV; DualPipe's two directions).
std::vector<int> loop_placement(int ranks, int stages);
std::vector<int> v_placement(int ranks);

// Every micro-batch visits stages 0..stages-1 in order.
void set_single_route(Schedule& schedule);

// Routes as an imported schedule defines them: a micro-batch visits the stages in which it appears, in
// increasing stage order.
void infer_routes(Schedule& schedule);

// Compute actions only (what a lowered schedule was before lowering).
Schedule compute_only(const Schedule& schedule);

// {"schedule", "ranks", "stages", "microbatches", "stage_to_rank", "programs": [["0F0", ...], ...]}
nlohmann::ordered_json to_json(const Schedule& schedule);
// One line per rank: "rank 0: 0F0 0F1 ...".
std::string to_text(const Schedule& schedule);

}  // namespace pipesim
