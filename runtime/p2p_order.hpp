// The point-to-point channels of a lowered schedule and the order of the messages on each. A channel is a
// sender, a receiver and a direction (activations or gradients: V-shaped and DualPipe schedules send both
// kinds over one pair of ranks, in orders the receiver does not follow). NCCL matches a channel's sends and
// receives in the order they are issued, not by tag, so a backend without tags can run a schedule only when
// every channel's sender issues its sends in the order the receiver issues the receives. MPI and the
// threaded Comm match by tag and need no such thing.
#pragma once

#include <string>
#include <compare>
#include <vector>

#include "schedules/schedule.hpp"

namespace pipesim {

struct P2pChannel {
  int from = 0, to = 0;  // pipeline ranks
  int direction = 0;     // 0 activations, 1 gradients
  friend auto operator<=>(const P2pChannel&, const P2pChannel&) = default;
};

struct P2pOrder {
  std::vector<P2pChannel> channels;     // sorted, each once
  std::vector<std::string> mismatches;  // per channel whose two orders differ, the first difference
  bool matched() const { return mismatches.empty(); }
};

P2pOrder p2p_order(const Schedule& lowered);

}  // namespace pipesim
