// Validation of the workload's sizes (see workload.hpp).
#include "runtime/workload.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {

void validate(const WorkloadSpec& s) {
  auto need = [](bool ok, const char* field, long long value, const std::string& rule) {
    if (!ok) throw Error(fmt::format("workload: {} = {}: {}", field, value, rule));
  };
  need(s.layers >= 1, "layers", s.layers, "must be at least 1");
  need(s.hidden >= 1, "hidden", s.hidden, "must be at least 1");
  need(s.heads >= 1, "heads", s.heads, "must be at least 1");
  need(s.hidden % s.heads == 0, "hidden", s.hidden, "must be a multiple of heads");
  need(s.ffn >= 1, "ffn", s.ffn, "must be at least 1");
  need(s.seq >= 1, "seq", s.seq, "must be at least 1");
  need(s.micro_batch >= 1, "micro_batch", s.micro_batch, "must be at least 1");
  // Kernels index with int: the largest tensors (activations, attention probabilities) must fit.
  long long rows = 1LL * s.micro_batch * s.seq;
  need(rows * std::max(s.hidden, s.ffn) <= INT_MAX && rows * s.heads * s.seq <= INT_MAX, "micro_batch·seq", rows,
       "too large for one micro-batch's tensors");
  need(s.ep >= 1, "ep", s.ep, "must be at least 1");
  need(s.ep_rank >= 0 && s.ep_rank < s.ep, "ep_rank", s.ep_rank, fmt::format("must be in [0, ep = {})", s.ep));
  need(s.experts >= 0, "experts", s.experts, "must be at least 0 (0: a dense MLP)");
  if (s.experts == 0) return;
  // Expert ids travel inside the dispatched rows as T, exact in float below 2^24.
  need(s.experts <= 1 << 16, "experts", s.experts, "must be at most 65536");
  need(s.experts % s.ep == 0, "experts", s.experts, fmt::format("must be a multiple of ep = {}", s.ep));
  need(s.experts_per_token >= 1 && s.experts_per_token <= s.experts, "experts_per_token", s.experts_per_token,
       fmt::format("must be in [1, experts = {}]", s.experts));
  need(s.expert_ffn >= 1, "expert_ffn", s.expert_ffn, "must be at least 1");
  // An expert may receive every routed row of the whole EP group in one step.
  long long routed = rows * s.experts_per_token * s.ep;
  need(routed * (std::max(s.hidden, s.expert_ffn) + 1) <= INT_MAX && rows * s.experts <= INT_MAX,
       "micro_batch·seq·experts_per_token·ep", routed, "too large for one step's routed rows");
}

}  // namespace pipesim
