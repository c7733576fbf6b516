// A slow, obviously-correct schedule checker for tests, written without the library's PassIndex or
// Boost.Graph: count every pass, then play the programs (each rank runs its next action as soon as the
// passes it needs are done; sends never block) and see whether every rank finishes.
#pragma once

#include <map>
#include <set>
#include <tuple>

#include "schedules/schedule.hpp"

namespace pipesim::testing {

inline bool reference_valid(const Schedule& s) {
  using Key = std::tuple<Op, int, int>;
  std::map<Key, int> count;
  for (int r = 0; r < s.ranks; ++r)
    for (auto& a : s.programs[static_cast<std::size_t>(r)])
      for (auto& p : a.passes()) {
        if (p.stage < 0 || p.stage >= s.stages || p.microbatch < 0 || p.microbatch >= s.microbatches) return false;
        if (s.stage_to_rank[static_cast<std::size_t>(p.stage)] != r) return false;
        if (++count[{p.op, p.stage, p.microbatch}] > 1) return false;
      }
  auto has = [&](Op op, int st, int mb) { return count.count({op, st, mb}) > 0; };
  std::size_t expected = 0;
  for (int mb = 0; mb < s.microbatches; ++mb) {
    auto& route = s.route(mb);
    for (std::size_t k = 0; k < route.size(); ++k) {
      int st = route[k];
      if (!has(Op::F, st, mb)) return false;
      bool split = has(Op::I, st, mb) && has(Op::W, st, mb) && !has(Op::B, st, mb);
      bool full = has(Op::B, st, mb) && !has(Op::I, st, mb) && !has(Op::W, st, mb);
      if (!split && !full) return false;
      expected += split ? 3 : 2;
      if (k + 1 < route.size() && s.stage_to_rank[static_cast<std::size_t>(route[k + 1])] !=
                                      s.stage_to_rank[static_cast<std::size_t>(st)] &&
          s.lowered()) {
        if (!has(Op::SendF, st, mb) || !has(Op::RecvF, route[k + 1], mb) || !has(Op::SendB, route[k + 1], mb) ||
            !has(Op::RecvB, st, mb))
          return false;
        expected += 4;
      }
    }
  }
  if (count.size() != expected) return false;  // a pass that nothing needs

  bool lowered = s.lowered();
  std::set<Key> done;
  auto is_done = [&](Op op, int st, int mb) { return done.count({op, st, mb}) > 0; };
  auto backward_done = [&](int st, int mb) { return is_done(Op::I, st, mb) || is_done(Op::B, st, mb); };
  auto cross = [&](int a, int b) {
    return s.stage_to_rank[static_cast<std::size_t>(a)] != s.stage_to_rank[static_cast<std::size_t>(b)];
  };
  auto ready = [&](const Pass& p) {
    auto& route = s.route(p.microbatch);
    std::size_t k = 0;
    while (route[k] != p.stage) ++k;
    int prev = k > 0 ? route[k - 1] : -1, next = k + 1 < route.size() ? route[k + 1] : -1;
    switch (p.op) {
      case Op::F:
        if (prev < 0) return true;
        return lowered && cross(prev, p.stage) ? is_done(Op::RecvF, p.stage, p.microbatch)
                                               : is_done(Op::F, prev, p.microbatch);
      case Op::I:
      case Op::B:
        if (!is_done(Op::F, p.stage, p.microbatch)) return false;
        if (next < 0) return true;
        return lowered && cross(next, p.stage) ? is_done(Op::RecvB, p.stage, p.microbatch)
                                               : backward_done(next, p.microbatch);
      case Op::W: return is_done(Op::I, p.stage, p.microbatch);
      case Op::SendF: return is_done(Op::F, p.stage, p.microbatch);
      case Op::SendB: return backward_done(p.stage, p.microbatch);
      case Op::RecvF: return is_done(Op::SendF, prev, p.microbatch);
      case Op::RecvB: return is_done(Op::SendB, next, p.microbatch);
      default: return false;
    }
  };
  std::vector<std::size_t> at(static_cast<std::size_t>(s.ranks));
  for (bool progress = true; progress;) {
    progress = false;
    for (std::size_t r = 0; r < at.size(); ++r) {
      auto& program = s.programs[r];
      while (at[r] < program.size()) {
        auto& action = program[at[r]];
        bool ok = true;
        for (auto& p : action.passes()) ok = ok && ready(p);
        if (!ok) break;
        for (auto& p : action.passes()) done.insert({p.op, p.stage, p.microbatch});
        ++at[r];
        progress = true;
      }
    }
  }
  for (std::size_t r = 0; r < at.size(); ++r)
    if (at[r] < s.programs[r].size()) return false;
  return true;
}

}  // namespace pipesim::testing
