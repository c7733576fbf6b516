// Every registry entry at many sizes: the generator accepts exactly the sizes its reference accepts, the
// result passes validation and the independent reference checker, lowering adds matched SEND/RECV
// pairs, and the text, CSV and JSON forms round-trip. Random damage to valid schedules must be judged
// the same way by validate() and by the reference checker.
#include <random>

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "schedules/csv.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"
#include "tests/schedules/reference_checker.hpp"

namespace pipesim {
namespace {

// The sizes each reference implementation accepts (DualPipe's and Megatron's asserts).
bool supported(std::string_view name, int p, int m, int v) {
  if (name == "dualpipe") return p % 2 == 0 && m % 2 == 0 && m >= 2 * p;
  if (name == "dualpipev") return m >= 2 * p;
  if (name == "interleaved-1f1b") return v >= 1 && (p == 1 || m % p == 0);
  return true;
}

struct Size {
  int p, m, v;
};

std::vector<Size> sizes() {
  std::vector<Size> out;
  for (int p : {1, 2, 3, 4, 5, 6, 8})
    for (int m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 20, 24})
      for (int v : {2, 3}) out.push_back({p, m, v});
  return out;
}

void expect_same(const Schedule& a, const Schedule& b) {
  EXPECT_EQ(a.ranks, b.ranks);
  EXPECT_EQ(a.stages, b.stages);
  EXPECT_EQ(a.microbatches, b.microbatches);
  EXPECT_EQ(a.stage_to_rank, b.stage_to_rank);
  EXPECT_EQ(a.programs, b.programs);
  for (int mb = 0; mb < a.microbatches; ++mb) EXPECT_EQ(a.route(mb), b.route(mb)) << "micro-batch " << mb;
}

TEST(Registry, EveryScheduleIsValidAndRoundTrips) {
  int generated = 0;
  for (auto& info : schedule_registry()) {
    for (auto [p, m, v] : sizes()) {
      if (!info.uses_virtual_stages && v != 2) continue;
      SCOPED_TRACE(fmt::format("{} p={} m={} v={}", info.name, p, m, v));
      Schedule s;
      try {
        s = info.generate({p, m, v});
      } catch (const Error& e) {
        EXPECT_FALSE(supported(info.name, p, m, v)) << "refused a supported size: " << e.what();
        EXPECT_EQ(e.exit_code(), 2);
        continue;
      }
      ASSERT_TRUE(supported(info.name, p, m, v)) << "accepted an unsupported size";
      ++generated;
      EXPECT_EQ(s.name, info.name);
      EXPECT_EQ(s.ranks, p);
      EXPECT_NO_THROW(validate(s));
      EXPECT_TRUE(testing::reference_valid(s));

      auto imported = from_csv(to_csv(s));
      expect_same(imported, s);

      auto json = to_json(s);
      EXPECT_EQ(json["schedule"], info.name);
      EXPECT_EQ(json["stages"], s.stages);
      ASSERT_EQ(json["programs"].size(), static_cast<std::size_t>(p));
      for (int r = 0; r < p; ++r)
        for (std::size_t k = 0; k < s.programs[static_cast<std::size_t>(r)].size(); ++k)
          EXPECT_EQ(parse_action(json["programs"][static_cast<std::size_t>(r)][k].get<std::string>()),
                    s.programs[static_cast<std::size_t>(r)][k]);

      auto low = lower(s);
      EXPECT_NO_THROW(validate(low));
      EXPECT_TRUE(testing::reference_valid(low));
      expect_same(compute_only(low), s);
      expect_same(from_csv(to_csv(low)), low);
    }
  }
  EXPECT_GT(generated, 300);
}

// Damaged schedules: swap, move, drop or duplicate an action. validate() and the reference must agree,
// and validate() must refuse with an Error, never crash.
TEST(Registry, ValidateAgreesWithReferenceOnDamagedSchedules) {
  std::mt19937 rng(12345);
  int refused = 0, accepted = 0;
  for (auto& info : schedule_registry()) {
    for (auto [p, m] : {std::pair{2, 4}, {3, 6}, {4, 8}, {4, 12}}) {
      if (!supported(info.name, p, m, 2)) continue;
      auto base = info.generate({p, m, 2});
      for (bool lowered : {false, true}) {
        auto good = lowered ? lower(base) : base;
        for (int trial = 0; trial < 60; ++trial) {
          auto s = good;
          auto& program = s.programs[std::uniform_int_distribution<std::size_t>(0, s.programs.size() - 1)(rng)];
          if (program.size() < 2) continue;
          std::uniform_int_distribution<std::size_t> pick(0, program.size() - 1);
          auto i = pick(rng), j = pick(rng);
          switch (trial % 4) {
            case 0: std::swap(program[i], program[j]); break;
            case 1: {
              auto a = program[i];
              program.erase(program.begin() + static_cast<long>(i));
              program.insert(program.begin() + static_cast<long>(std::min(j, program.size())), a);
              break;
            }
            case 2: program.erase(program.begin() + static_cast<long>(i)); break;
            case 3: program.insert(program.begin() + static_cast<long>(j), program[i]); break;
          }
          bool expected = testing::reference_valid(s);
          bool ok = true;
          try {
            validate(s);
          } catch (const Error& e) {
            ok = false;
            EXPECT_EQ(e.exit_code(), 2);
          }
          EXPECT_EQ(ok, expected) << info.name << " p=" << p << " m=" << m << " lowered=" << lowered << "\n"
                                  << to_text(s);
          (ok ? accepted : refused) += 1;
        }
      }
    }
  }
  EXPECT_GT(refused, 200);  // both outcomes must be well represented
  EXPECT_GT(accepted, 50);
}

// A schedule's declared sizes and layout are what its generator does: supports() agrees with the
// reference implementations' asserts (and with the generator, which refuses with the same message), and
// layout() gives the generated placement and routes without generating.
TEST(Registry, SupportsAndLayoutAgreeWithTheGenerator) {
  for (auto& info : schedule_registry()) {
    for (auto [p, m, v] : sizes()) {
      if (!info.uses_virtual_stages && v != 2) continue;
      SCOPED_TRACE(fmt::format("{} p={} m={} v={}", info.name, p, m, v));
      GeneratorOptions o{p, m, v};
      auto problem = info.supports(o);
      EXPECT_EQ(!problem, supported(info.name, p, m, v)) << (problem ? problem->message : "");
      if (problem) {
        EXPECT_TRUE(problem->field == "ranks" || problem->field == "microbatches" || problem->field == "virtual_stages");
        try {
          info.generate(o);
          ADD_FAILURE() << "generated an unsupported size";
        } catch (const Error& e) {
          EXPECT_EQ(std::string(e.what()), fmt::format("{}: {}", info.name, problem->message));
        }
        continue;
      }
      auto s = info.generate(o);
      auto layout = info.layout(o);
      EXPECT_EQ(layout.stages, s.stages);
      EXPECT_EQ(layout.stage_to_rank, s.stage_to_rank);
      EXPECT_EQ(layout.routes, s.routes);
    }
  }
}

// The library speaks its own vocabulary (the CLI adds the flag): sizes every schedule refuses.
TEST(Registry, BasicSizesAreRefusedInTheLibrarysWords) {
  auto problem = basic_support({4, 0, 2});
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->field, "microbatches");
  EXPECT_EQ(problem->message, "microbatches 0 must be >= 1 (a step needs a micro-batch)");
  problem = basic_support({0, 8, 2});
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->field, "ranks");
  EXPECT_FALSE(basic_support({4096, 1024, 2}));
  EXPECT_TRUE(basic_support({4096, 1025, 2}));  // beyond 2^22 rank x micro-batch pairs
}

TEST(Registry, UnknownNameListsTheKnownOnes) {
  try {
    generate_schedule("zb-h3", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown schedule 'zb-h3'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("dualpipev"), std::string::npos);
  }
}

}  // namespace
}  // namespace pipesim
