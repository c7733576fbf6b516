// The checked walk (schedules/play.hpp) held to validation check by check (validate_each_check(), the
// pass index and the dependency graph): on every registry schedule and on thousands of random breakages of
// them (actions swapped, moved, dropped, doubled, sent to another rank; a pass's stage, micro-batch or kind
// changed; a pair split or two actions paired), the walk accepts exactly the schedules the checks accept,
// and visits each action once, after every pass it needs.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <tuple>

#include "common/error.hpp"
#include "schedules/play.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

bool checks_accept(const Schedule& s) {
  try {
    validate_each_check(s);
    return true;
  } catch (const Error&) {
    return false;
  }
}

bool walk_accepts(const Schedule& s) {
  return Play(s).run([](int, const Action&, const Play::Hop* const*) {});
}

// One random breakage of a schedule's programs (its shape, placement and routes untouched).
void break_once(Schedule& s, std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng)); };
  auto& program = s.programs[static_cast<std::size_t>(pick(s.ranks))];
  if (program.empty()) return;
  auto at = static_cast<std::ptrdiff_t>(pick(static_cast<int>(program.size())));
  auto other = static_cast<std::ptrdiff_t>(pick(static_cast<int>(program.size())));
  auto& action = program[static_cast<std::size_t>(at)];
  auto& pass = action.pass[static_cast<std::size_t>(pick(static_cast<int>(action.passes().size())))];
  switch (pick(10)) {
    case 0: std::swap(program[static_cast<std::size_t>(at)], program[static_cast<std::size_t>(other)]); break;
    case 1: {  // move one action a few places
      auto moved = action;
      program.erase(program.begin() + at);
      auto to = std::clamp<std::ptrdiff_t>(at + pick(7) - 3, 0, static_cast<std::ptrdiff_t>(program.size()));
      program.insert(program.begin() + to, moved);
      break;
    }
    case 2: program.erase(program.begin() + at); break;
    case 3: {  // a copy, as it is, as the other backward, or on another stage of the same rank
      auto copy = action;
      auto& p = copy.pass[0];
      if (pick(2) && is_backward(p.op)) {
        p.op = p.op == Op::I ? Op::B : Op::I;
        copy.op = p.op;
      } else if (pick(2) && p.stage >= 0 && p.stage < s.stages) {  // (an earlier breakage may have left it out of range)
        int rank = s.stage_to_rank[static_cast<std::size_t>(p.stage)];
        for (int st = 0; st < s.stages; ++st)
          if (st != p.stage && s.stage_to_rank[static_cast<std::size_t>(st)] == rank && pick(2)) p.stage = st;
      }
      program.insert(program.begin() + other, copy);
      break;
    }
    case 4: {  // to another rank
      auto moved = action;
      program.erase(program.begin() + at);
      auto& there = s.programs[static_cast<std::size_t>(pick(s.ranks))];
      there.insert(there.begin() + pick(static_cast<int>(there.size()) + 1), moved);
      break;
    }
    case 5: pass.stage = pick(s.stages + 2) - 1; break;
    case 6: pass.microbatch = pick(s.microbatches + 2) - 1; break;
    case 7:
      if (action.op != Op::OverlapFB) {
        pass.op = static_cast<Op>(pick(4));
        action.op = pass.op;
      } else {
        pass.op = pass.op == Op::F ? Op::F : (pick(2) ? Op::I : Op::B);
      }
      break;
    case 8:  // split a pair into its two halves
      if (action.op == Op::OverlapFB) {
        auto f = action.pass[0], b = action.pass[1];
        action = Action::single(f.op, f.stage, f.microbatch);
        program.insert(program.begin() + at + 1, Action::single(b.op, b.stage, b.microbatch));
      }
      break;
    default: {  // pair an F with the next single backward of the rank
      if (action.op != Op::F) break;
      for (auto k = static_cast<std::size_t>(at) + 1; k < program.size(); ++k)
        if (is_backward(program[k].op)) {
          auto b = program[k].pass[0];
          program.erase(program.begin() + static_cast<std::ptrdiff_t>(k));
          program[static_cast<std::size_t>(at)] = Action::overlap(program[static_cast<std::size_t>(at)].pass[0], b);
          break;
        }
      break;
    }
  }
}

TEST(Play, AcceptsExactlyWhatEachCheckAccepts) {
  std::mt19937_64 rng(20261204);
  int cases = 0, valid = 0;
  for (auto& info : schedule_registry()) {
    for (auto [ranks, microbatches] : {std::pair{2, 4}, {4, 8}, {4, 12}}) {
      GeneratorOptions options{ranks, microbatches, 2};
      if (info.supports(options)) continue;
      auto base = info.generate(options);
      ASSERT_TRUE(walk_accepts(base)) << info.name << " " << ranks << "x" << microbatches;
      for (int trial = 0; trial < 400; ++trial) {
        auto s = base;
        for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) break_once(s, rng);
        ASSERT_NO_THROW(validate_shape(s));
        bool expected = checks_accept(s);
        ASSERT_EQ(walk_accepts(s), expected) << info.name << " trial " << trial << "\n" << to_text(s);
        ++cases;
        valid += expected;
      }
    }
  }
  // The breakages must reach both answers often, or the test says little.
  EXPECT_GT(cases, 5000);
  EXPECT_GT(valid, cases / 20);
  EXPECT_LT(valid, cases / 2);
}

// Each action is visited once, after every pass it needs (by the dependency rules of
// schedules/dependencies.hpp, written out here again: F after the F before it on its route, I or B after
// their F and the backward after them, W after its I).
TEST(Play, VisitsEachActionOnceAfterWhatItNeeds) {
  for (auto& info : schedule_registry()) {
    GeneratorOptions options{4, 12, 2};
    if (info.supports(options)) continue;
    auto s = info.generate(options);
    std::set<std::tuple<Op, int, int>> ran;
    std::size_t visits = 0;
    auto has = [&](Op op, int stage, int mb) { return ran.count({op, stage, mb}) > 0; };
    bool ok = Play(s).run([&](int rank, const Action& action, const Play::Hop* const*) {
      ++visits;
      for (auto& p : action.passes()) {
        EXPECT_EQ(s.stage_to_rank[static_cast<std::size_t>(p.stage)], rank);
        int before = s.stage_before(p.stage, p.microbatch), after = s.stage_after(p.stage, p.microbatch);
        switch (p.op) {
          case Op::F: EXPECT_TRUE(before < 0 || has(Op::F, before, p.microbatch)) << info.name << " " << to_string(p); break;
          case Op::W: EXPECT_TRUE(has(Op::I, p.stage, p.microbatch)) << info.name << " " << to_string(p); break;
          default:
            EXPECT_TRUE(has(Op::F, p.stage, p.microbatch)) << info.name << " " << to_string(p);
            EXPECT_TRUE(after < 0 || has(Op::I, after, p.microbatch) || has(Op::B, after, p.microbatch))
                << info.name << " " << to_string(p);
        }
      }
      for (auto& p : action.passes()) EXPECT_TRUE(ran.insert({Op{p.op}, int{p.stage}, p.microbatch}).second);
    });
    EXPECT_TRUE(ok) << info.name;
    EXPECT_EQ(visits, s.action_count()) << info.name;
  }
}

// An imported schedule with a route per micro-batch over a thousand stages has more (route, stage) pairs
// than the walk's table takes (Play::kMaxHops): the walk declines at once, and validate() still settles
// the schedule, check by check.
TEST(Play, DeclinesTooManyRoutesAndValidateStillDecides) {
  Schedule s;
  s.name = "csv";
  s.ranks = 1;
  s.stages = 1025;
  s.microbatches = 1024;
  s.stage_to_rank.assign(1025, 0);
  s.programs.resize(1);
  std::vector<std::vector<int>> routes;
  std::vector<int> route_of;
  auto& program = s.programs[0];
  for (int mb = 0; mb < s.microbatches; ++mb) {
    routes.emplace_back();
    for (int st = 0; st <= 1 + mb; ++st) routes.back().push_back(st);
    route_of.push_back(mb);
  }
  for (int mb = 0; mb < s.microbatches; ++mb)
    for (int st = 0; st <= 1 + mb; ++st) program.push_back(Action::single(Op::F, st, mb));
  for (int mb = 0; mb < s.microbatches; ++mb)
    for (int st = 1 + mb; st >= 0; --st) program.push_back(Action::single(Op::B, st, mb));
  set_routes(s, routes, route_of);
  ASSERT_GT(routes.size() * static_cast<std::size_t>(s.stages), Play::kMaxHops);
  EXPECT_FALSE(walk_accepts(s));
  EXPECT_NO_THROW(validate(s));
  std::swap(program[0], program[1]);  // 1F0 before the 0F0 it needs
  EXPECT_THROW(validate(s), Error);
}

}  // namespace
}  // namespace pipesim
