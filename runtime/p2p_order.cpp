// Links and message order of a lowered schedule (see p2p_order.hpp). A message is named by what it carries:
// direction (activation or gradient), the stage it feeds, and the micro-batch, as the executor tags it.
#include "runtime/p2p_order.hpp"

#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace pipesim {
namespace {

using Message = std::tuple<int, int, int>;  // direction, receiving stage, micro-batch

std::string name(const Message& m) {
  auto [direction, stage, mb] = m;
  return fmt::format("{} into stage {} of micro-batch {}", direction == 0 ? "activation" : "gradient", stage, mb);
}

}  // namespace

P2pOrder p2p_order(const Schedule& s) {
  std::map<P2pChannel, std::vector<Message>> sent, received;
  auto rank_of = [&](int stage) { return s.stage_to_rank[static_cast<std::size_t>(stage)]; };
  for (int r = 0; r < s.ranks; ++r)
    for (auto& a : s.programs[static_cast<std::size_t>(r)]) {
      int mb = a.microbatch();
      switch (a.op) {
        case Op::SendF:
        case Op::SendB: {
          int to = a.op == Op::SendF ? s.stage_after(a.stage(), mb) : s.stage_before(a.stage(), mb);
          int direction = a.op == Op::SendF ? 0 : 1;
          sent[{r, rank_of(to), direction}].emplace_back(direction, to, mb);
          break;
        }
        case Op::RecvF:
        case Op::RecvB: {
          int from = a.op == Op::RecvF ? s.stage_before(a.stage(), mb) : s.stage_after(a.stage(), mb);
          int direction = a.op == Op::RecvF ? 0 : 1;
          received[{rank_of(from), r, direction}].emplace_back(direction, a.stage(), mb);
          break;
        }
        default: break;
      }
    }
  P2pOrder out;
  std::set<P2pChannel> channels;
  for (auto& [channel, _] : sent) channels.insert(channel);
  for (auto& [channel, _] : received) channels.insert(channel);
  for (auto& channel : channels) {
    out.channels.push_back(channel);
    auto& a = sent[channel];
    auto& b = received[channel];
    for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      if (i < a.size() && i < b.size() && a[i] == b[i]) continue;
      out.mismatches.push_back(fmt::format("rank {} -> {} ({}): message {} is sent as the {} but received as the {}",
                                           channel.from, channel.to, channel.direction ? "gradients" : "activations", i + 1,
                                           i < a.size() ? name(a[i]) : std::string("(nothing)"),
                                           i < b.size() ? name(b[i]) : std::string("(nothing)")));
      break;
    }
  }
  return out;
}

}  // namespace pipesim
