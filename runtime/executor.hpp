// The runtime's interpreter of the schedule IR: walks programs[rank] of a lowered schedule and dispatches
// each action to the stage models this rank holds and to the communication backend; knows no schedule
// names. F/I/W/B run the stage's layers; SEND posts a non-blocking send of the stage's output (or input
// gradient); RECV posts a non-blocking receive that the consuming pass waits on before it starts (the wait
// ends the RECV's span); hand-offs between stages on one rank stay in memory. An overlapped F&B pair waits
// for both halves' inputs, runs its forward half, lets communication progress, then its backward half (or,
// with overlap_pairs, the two halves taking turns at the MoE layers' pauses: all-to-alls and stream waits).
// Every action is timed on the monotonic clock; routes and neighbours come from the Schedule's queries.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "runtime/comm.hpp"
#include "runtime/device.hpp"
#include "schedules/schedule.hpp"
#include "traces/timeline.hpp"

namespace pipesim {

// Which transformer layers `stage` runs, as (first layer, count): a micro-batch's route crosses the whole
// model once, so the stage at position k of a route of L stages runs part k of even_layer_split(layers, L)
// (models/layer_split.hpp, the simulator's policy too). DualPipe's two routes each hold a full copy.
// Throws Error (Input) when the route has more stages than the model has layers.
std::pair<int, int> stage_layers(const Schedule& schedule, int stage, int layers);

// The tag of a pipeline message: what it carries (0 an activation, 1 a gradient), the stage it feeds and the
// micro-batch, unique within a step; message_direction() reads the direction back (a tag-less backend's
// channel, runtime/p2p_order.hpp).
inline int message_tag(int direction, int stage, int microbatch, int stages) {
  return (microbatch * stages + stage) * 2 + direction;
}
inline int message_direction(int tag) { return tag % 2; }

template <class T>
class Executor {
 public:
  // The stages this rank holds are made by `device`, which must outlive the executor. With `overlap_pairs`
  // and an EP group, an overlapped pair's halves take turns on two threads at the MoE layers' pauses (all-to-
  // alls and stream waits: runtime/pair_runner.hpp) instead of running one after the other.
  Executor(const Schedule& lowered, const WorkloadSpec& spec, Comm& comm, Device<T>& device,
           bool overlap_pairs = false);
  ~Executor();

  // One training step over all micro-batches. Spans are in nanoseconds of this rank's monotonic clock,
  // relative to `origin`; losses are those of micro-batches whose last stage is on this rank.
  std::vector<Span> run_step(std::chrono::steady_clock::time_point origin);
  const std::map<int, T>& losses() const { return losses_; }
  // Weight gradients of the chunks held here, by name ("layer3.wq"), with DualPipe's two copies of a chunk
  // already summed between their ranks (call on every rank, after the step).
  std::map<std::string, std::vector<double>> gradients();
  void zero_gradients();

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::map<int, T> losses_;
};

}  // namespace pipesim
