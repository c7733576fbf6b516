// One run of a lowered schedule on this rank (see run.hpp). Losses and gradients of the checked step travel
// to rank 0 as JSON text, the same way timelines do.
#include "runtime/run.hpp"

#include <chrono>
#include <functional>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "runtime/executor.hpp"
#include "runtime/measure.hpp"

namespace pipesim {
namespace {

// Rank 0: every rank's losses and gradients of the step just run, merged.
template <class T>
std::optional<StepValues> gather_values(Comm& comm, Executor<T>& executor) {
  nlohmann::json mine;
  for (auto& [mb, loss] : executor.losses()) mine["losses"][std::to_string(mb)] = static_cast<double>(loss);
  for (auto& [name, values] : executor.gradients()) mine["grads"][name] = values;
  auto parts = comm.gather(mine.dump());
  if (comm.rank() != 0) return std::nullopt;
  StepValues out;
  for (auto& part : parts) {
    auto j = nlohmann::json::parse(part);
    if (j.contains("losses"))
      for (auto& [mb, loss] : j["losses"].items()) out.losses[std::stoi(mb)] = loss.template get<double>();
    if (j.contains("grads"))
      for (auto& [name, values] : j["grads"].items()) out.gradients[name] = values.template get<std::vector<double>>();
  }
  return out;
}

}  // namespace

template <class T>
RunResult run_pipeline(const Schedule& lowered, const WorkloadSpec& spec, Comm& comm, Device<T>& device,
                       const RunOptions& options) {
  if (options.steps < 1) throw Error(fmt::format("--steps is {}; run at least 1", options.steps));
  comm.set_timeout(options.timeout_s);
  Executor<T> executor(lowered, spec, comm, device, options.overlap_pairs);
  RunResult result;
  result.device = device.name();
  auto& links = result.links;
  links.activation_bytes = static_cast<std::int64_t>(static_cast<std::size_t>(spec.micro_batch) * spec.seq * spec.hidden *
                                                     sizeof(T));
  auto bytes = static_cast<std::size_t>(links.activation_bytes);
  {
    auto probe = device.transfer_buffer(std::max<std::size_t>(bytes / sizeof(T), 8 / sizeof(T) + 1));
    std::tie(links.p2p_latency_ns, links.p2p_bandwidth_GBps) = ping_pong(comm, probe.data(), probe.bytes());
  }
  if (spec.ep > 1) links.all_to_all_GBps = all_to_all_rate(comm, lowered.ranks, bytes);
  auto origin = std::chrono::steady_clock::now();
  comm.barrier();
  auto offset = clock_offset(comm, origin);
  // Waits between steps fail with the step they were at (the executor names the action and peer within one).
  auto between = [&](int step, const char* what, const std::function<void()>& body) {
    try {
      body();
    } catch (const Error& e) {
      throw Error(fmt::format("{} step {}: {}", what, step, e.what()), e.kind());
    }
  };
  for (int step = 0; step < options.steps; ++step) {
    executor.zero_gradients();
    between(step, "at the barrier before", [&] { comm.barrier(); });
    auto spans = executor.run_step(origin);
    // Every rank's work is done before any takes its kernels: ranks running as threads share one recorder,
    // and a record taken while another rank's kernel still runs would be incomplete.
    between(step, "at the barrier after", [&] { comm.barrier(); });
    auto kernels = device.take_kernels(comm.rank() % lowered.ranks, origin);
    GatheredStep gathered;
    between(step, "gathering the timeline of",
            [&] { gathered = gather_step(comm, spans, kernels, offset, lowered.ranks); });
    if (comm.rank() == 0) {
      result.steps.push_back(std::move(gathered.spans));
      if (!gathered.kernels.empty() || !result.kernels.empty()) {
        result.kernels.resize(result.steps.size() - 1);
        result.kernels.push_back(std::move(gathered.kernels));
      }
    }
    if (!options.check || step > 0) continue;
    auto got = gather_values(comm, executor);
    if (got) result.check = compare_with_reference(*got, reference_step<T>(spec, lowered.microbatches, device),
                                                   check_tolerance<T>());
    device.take_kernels(0, origin);  // the reference step's own kernels are no step's
  }
  return result;
}

template RunResult run_pipeline<double>(const Schedule&, const WorkloadSpec&, Comm&, Device<double>&, const RunOptions&);
template RunResult run_pipeline<float>(const Schedule&, const WorkloadSpec&, Comm&, Device<float>&, const RunOptions&);

}  // namespace pipesim
