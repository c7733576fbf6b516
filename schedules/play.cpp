// The checked walk over a compute-only schedule (see play.hpp).
#include "schedules/play.hpp"

namespace pipesim {

Play::Play(const Schedule& s) : s_(s) {
  if (s.routes.size() * static_cast<std::size_t>(s.stages) > kMaxHops) return;
  hops_.resize(s.routes.size() * static_cast<std::size_t>(s.stages) * 2);
  auto rank_of = [&](int stage) { return s.stage_to_rank[static_cast<std::size_t>(stage)]; };
  for (std::size_t route = 0; route < s.routes.size(); ++route) {
    auto& path = s.routes[route];
    for (std::size_t k = 0; k < path.size(); ++k) {
      int stage = path[k];
      int before = k > 0 ? path[k - 1] : -1, after = k + 1 < path.size() ? path[k + 1] : -1;
      for (int backward = 0; backward < 2; ++backward) {
        int from = backward ? after : before, to = backward ? before : after;
        auto& hop = hops_[(route * static_cast<std::size_t>(s.stages) + static_cast<std::size_t>(stage)) * 2 +
                          static_cast<std::size_t>(backward)];
        hop.on_route = true;
        hop.from = from;
        hop.recv = from >= 0 && rank_of(from) != rank_of(stage);
        if (to >= 0 && rank_of(to) != rank_of(stage)) {
          hop.send_to = to;
          hop.send_peer = rank_of(to);
        }
      }
    }
  }
  done_.assign(static_cast<std::size_t>(s.stages) * static_cast<std::size_t>(s.microbatches), 0);
  ranks_.resize(static_cast<std::size_t>(s.ranks));
  for (int r = s.ranks - 1; r >= 0; --r) ready_.push_back(r);
}

// After the last action: each stage of each micro-batch's route ran F and either B or I and W.
bool Play::complete() {
  auto full = bit(Op::F) | bit(Op::B), split = bit(Op::F) | bit(Op::I) | bit(Op::W);
  for (int mb = 0; mb < s_.microbatches; ++mb)
    for (int stage : s_.route(mb))
      if (auto d = done(stage, mb); d != full && d != split) return false;
  return true;
}

}  // namespace pipesim
