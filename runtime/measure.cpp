// Link microbenchmarks, clock alignment and timeline gathering (see measure.hpp).
#include "runtime/measure.hpp"

#include <algorithm>
#include <climits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/json.hpp"
#include "traces/timeline_file.hpp"

namespace pipesim {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t ns_since(Clock::time_point origin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - origin).count();
}

// Spans travel in the run file's form (traces/timeline_file.hpp), shifted onto rank 0's clock.
// One rank's step as {"spans": [...], "kernels": [...]}, times on rank 0's clock.
std::string step_text(const std::vector<Span>& spans, const std::vector<KernelSpan>& kernels, std::int64_t offset) {
  nlohmann::json out{{"spans", nlohmann::json::array()}, {"kernels", nlohmann::json::array()}};
  for (auto s : spans) {
    s.start_ns += offset;
    s.end_ns += offset;
    out["spans"].push_back(span_to_json(s));
  }
  for (auto k : kernels) {
    k.start_ns += offset;
    k.end_ns += offset;
    out["kernels"].push_back(kernel_to_json(k));
  }
  return out.dump();
}

}  // namespace

std::pair<double, double> ping_pong(Comm& comm, void* buffer, std::size_t bytes) {
  if (comm.size() < 2) return {0, 0};
  if (bytes < 8) throw Error(fmt::format("ping_pong: {} bytes; give at least 8", bytes), Error::Kind::Internal);
  auto round_trip = [&](std::size_t n, int reps) {
    double best = 1e300;
    for (int i = 0; i < reps; ++i) {
      auto t0 = Clock::now();
      if (comm.rank() == 0) {
        comm.wait(comm.isend(1, 7, buffer, n));
        comm.wait(comm.irecv(1, 7, buffer, n));
      } else if (comm.rank() == 1) {
        comm.wait(comm.irecv(0, 7, buffer, n));
        comm.wait(comm.isend(0, 7, buffer, n));
      }
      best = std::min(best, static_cast<double>(ns_since(t0)) / 2);
    }
    return best;
  };
  double latency = round_trip(8, 50);
  double large = round_trip(bytes, 10);
  double values[2] = {latency, large > latency ? static_cast<double>(bytes) / (large - latency) : 0};
  comm.broadcast(values, sizeof(values), 0);
  return {values[0], values[1]};
}

double all_to_all_rate(Comm& comm, int pipeline_ranks, std::size_t bytes) {
  auto group = comm.split(comm.rank() % pipeline_ranks, comm.rank() / pipeline_ranks);
  std::vector<std::vector<char>> send(static_cast<std::size_t>(group->size()), std::vector<char>(bytes));
  double best = 1e300;
  for (int i = 0; i < 5; ++i) {
    group->barrier();
    auto t0 = Clock::now();
    group->all_to_all_v(send);
    best = std::min(best, static_cast<double>(ns_since(t0)));
  }
  double rate = static_cast<double>(bytes) * (group->size() - 1) / best;  // GB/s = bytes per ns
  comm.broadcast(&rate, sizeof(rate), 0);
  return rate;
}

std::int64_t clock_offset(Comm& comm, Clock::time_point origin) {
  std::int64_t offset = 0;
  for (int r = 1; r < comm.size(); ++r) {
    if (comm.rank() == 0) {
      for (int i = 0; i < 10; ++i) {
        std::int64_t dummy = 0;
        comm.wait(comm.irecv(r, 11, &dummy, sizeof(dummy)));
        std::int64_t t = ns_since(origin);
        comm.wait(comm.isend(r, 11, &t, sizeof(t)));
      }
    } else if (comm.rank() == r) {
      std::int64_t best_rtt = INT64_MAX;
      for (int i = 0; i < 10; ++i) {
        std::int64_t t0 = ns_since(origin), remote = 0;
        comm.wait(comm.isend(0, 11, &t0, sizeof(t0)));
        comm.wait(comm.irecv(0, 11, &remote, sizeof(remote)));
        std::int64_t t2 = ns_since(origin);
        if (t2 - t0 < best_rtt) {
          best_rtt = t2 - t0;
          offset = remote - (t0 + t2) / 2;
        }
      }
    }
  }
  return offset;
}

GatheredStep gather_step(Comm& comm, const std::vector<Span>& spans, const std::vector<KernelSpan>& kernels,
                         std::int64_t offset, int pipeline_ranks) {
  auto gathered = comm.gather(step_text(spans, kernels, offset));
  GatheredStep all;
  if (comm.rank() != 0) return all;
  for (int r = 0; r < pipeline_ranks; ++r) {
    auto json = parse_json(gathered[static_cast<std::size_t>(r)], "gathered step");
    JsonReader step(json, "gathered step");
    for (auto& a : step.child("spans").elements()) all.spans.push_back(span_from_json(a, pipeline_ranks));
    for (auto& a : step.child("kernels").elements()) all.kernels.push_back(kernel_from_json(a, pipeline_ranks));
  }
  std::int64_t first = INT64_MAX;
  for (auto& s : all.spans) first = std::min(first, s.start_ns);
  for (auto& s : all.spans) {
    s.start_ns -= first;
    s.end_ns -= first;
  }
  for (auto& k : all.kernels) {
    k.start_ns -= first;
    k.end_ns -= first;
  }
  return all;
}

}  // namespace pipesim
