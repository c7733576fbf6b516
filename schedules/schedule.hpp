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
  // Distinct stage sequences a micro-batch follows, forward order, and [microbatch] -> index into routes.
  // Written only through set_routes(), which also fills the per-stage tables below.
  std::vector<std::vector<int>> routes;
  std::vector<int> route_of;
  std::vector<std::vector<Action>> programs;  // [rank] -> actions in execution order

  const std::vector<int>& route(int microbatch) const { return routes[static_cast<std::size_t>(route_of[static_cast<std::size_t>(microbatch)])]; }
  // A stage sits at one position on every route that visits it (validate() refuses anything else).
  int position(int stage) const { return stage_position_[static_cast<std::size_t>(stage)]; }  // -1: unvisited
  // Stages a route through `stage` crosses: the model is cut into this many chunks along it.
  int route_length(int stage) const { return stage_route_length_[static_cast<std::size_t>(stage)]; }
  // The stage that feeds `stage` on the micro-batch's route (-1 at the route's start), and the one it feeds
  // (-1 at its end).
  int stage_before(int stage, int microbatch) const { return neighbour(stage, microbatch, -1); }
  int stage_after(int stage, int microbatch) const { return neighbour(stage, microbatch, +1); }
  // The stage's share of the model in 1F1B stages (1/ranks of the model each): 1 for 1F1B, 1/2 for ZB-V
  // and DualPipeV chunks, 1/v interleaved.
  double chunk_share(int stage) const { return static_cast<double>(ranks) / static_cast<double>(route_length(stage)); }
  bool lowered() const;  // holds SEND/RECV actions
  std::size_t action_count() const;
  // Everything but the actions: the same shape, placement and routes, with `ranks` empty programs (lowering
  // builds new programs; copying the old ones first would copy every action for nothing).
  Schedule without_programs() const;

 private:
  friend void set_routes(Schedule&, std::vector<std::vector<int>>, std::vector<int>);
  int neighbour(int stage, int microbatch, int step) const {  // inline: validation asks for every pass
    auto& path = route(microbatch);
    long k = static_cast<long>(position(stage)) + step;
    return k < 0 || k >= static_cast<long>(path.size()) ? -1 : path[static_cast<std::size_t>(k)];
  }
  std::vector<int> stage_position_, stage_route_length_;  // [stage]
};

// Sets the routes and derives the per-stage position and route length (the first route that visits a
// stage decides; validate() reports a stage placed differently on two routes).
void set_routes(Schedule& schedule, std::vector<std::vector<int>> routes, std::vector<int> route_of);

// Stage placements. Loop: stage s on rank s % ranks (1F1B, interleaved). V: rank r holds stages r and
// 2·ranks−1−r, so a micro-batch enters and leaves on rank 0 (ZB-V, DualPipeV; DualPipe's two directions).
std::vector<int> loop_placement(int ranks, int stages);
std::vector<int> v_placement(int ranks);

// [stage] -> its partner in an overlapped F&B pair: the other stage on its rank when the rank holds exactly
// two (DualPipe and the V placements), itself when the rank holds only it, -1 when the rank holds more.
std::vector<int> pair_partners(const std::vector<int>& stage_to_rank, int ranks);

// Every micro-batch visits stages 0..stages-1 in order.
void set_single_route(Schedule& schedule);

// Routes as an imported schedule defines them: a micro-batch visits the stages in which it appears, in
// increasing stage order.
void infer_routes(Schedule& schedule);

// Compute actions only (what a lowered schedule was before lowering).
Schedule compute_only(const Schedule& schedule);

// {"schedule", "ranks", "stages", "microbatches", "stage_to_rank", "programs": [["0F0", ...], ...],
//  "routes": [[0, 1, ...], ...], "route_of": [0, 0, 1, ...]}: the header every run record carries.
nlohmann::ordered_json to_json(const Schedule& schedule);
// The same form back; routes are inferred from the programs when absent. Sizes are checked here (so the
// tables validate() builds stay small); the rest is validate()'s job. Errors name the JSON path.
class JsonReader;
Schedule schedule_from_json(const JsonReader& json);
// One line per rank: "rank 0: 0F0 0F1 ...".
std::string to_text(const Schedule& schedule);

}  // namespace pipesim
