// CSV in PyTorch's layout: what Python's csv module writes (CRLF, quoting, empty cells for bubbles,
// bookkeeping cells) imports; ownership and routes are inferred; malformed input names line and cell.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "schedules/csv.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

std::string refusal(const std::string& text) {
  try {
    from_csv(text, "plan.csv");
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    return e.what();
  }
  ADD_FAILURE() << "accepted " << text;
  return "";
}

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST(Csv, ExportsOneRowPerRank) {
  auto s = generate_schedule("1f1b", {2, 2, 2});
  EXPECT_EQ(to_csv(s), "0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1\n");
  auto dp = generate_schedule("dualpipev", {1, 2, 2});
  EXPECT_EQ(to_csv(dp), "0F0,1F0,0F1,1B0,(1F1;0B0)OVERLAP_F_B,1B1,0I1,0W1\n");  // dualpipev.py with one rank
}

TEST(Csv, ImportsWhatPythonWrites) {
  // CRLF line ends, an empty cell for a bubble (PyTorch's None), a quoted cell, bookkeeping cells.
  auto s = from_csv("0F0,0F1,,0I0,0W0,0I1,0W1,0REDUCE_GRAD\r\n,1F0,1I0,\"1F1\",1I1,1W0,1W1\r\n");
  EXPECT_EQ(s.ranks, 2);
  EXPECT_EQ(s.stages, 2);
  EXPECT_EQ(s.microbatches, 2);
  EXPECT_EQ(s.stage_to_rank, (std::vector<int>{0, 1}));
  EXPECT_EQ(s.programs[0].size(), 6u);
  EXPECT_EQ(s.programs[1][2], Action::single(Op::F, 1, 1));
  EXPECT_NO_THROW(validate(s));
}

TEST(Csv, InfersOwnershipAndTwoDirections) {
  // DualPipe on 2 ranks: micro-batches 0,1 go through stages 0,1; 2,3 through stages 2,3 (stage 2 on rank 1).
  auto s = from_csv(to_csv(generate_schedule("dualpipe", {2, 4, 2})));
  EXPECT_EQ(s.stage_to_rank, (std::vector<int>{0, 1, 1, 0}));
  EXPECT_EQ(s.route(0), (std::vector<int>{0, 1}));
  EXPECT_EQ(s.route(3), (std::vector<int>{2, 3}));
  EXPECT_NO_THROW(validate(s));
}

TEST(Csv, RefusesMalformedInput) {
  EXPECT_HAS(refusal(""), "plan.csv: no rows");
  EXPECT_HAS(refusal(",,\n"), "no actions");
  EXPECT_HAS(refusal("0F0,0B0\n1F0,1Q0\n"), "plan.csv line 2 (rank 1), cell 2: invalid action '1Q0'");
  EXPECT_HAS(refusal("0F0,0B0,\"1F0\n"), "quoted cell is never closed");
  EXPECT_HAS(refusal("0F0,0B0\n0F1,0B1\n"), "stage 0 appears on rank 0 and on rank 1");
  EXPECT_HAS(refusal("0F0,0B0\n2F0,2B0\n"), "stage 1 appears in no row");
  EXPECT_HAS(refusal("0F0,0B0\n1F99999999999,1B0\n"), "invalid action");
  EXPECT_HAS(refusal("0F0,0B0\n1F0,1B9999999\n"), "beyond the supported size");
}

TEST(Csv, GapInMicrobatchesIsAValidationError) {
  auto s = from_csv("0F0,0B0,0F2,0B2\n1F0,1B0,1F2,1B2\n");
  try {
    validate(s);
    FAIL();
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "micro-batch 1 visits no stage");
  }
}

// Programs built elsewhere (trace import) reach the schedule through schedule_from_programs: a negative
// stage or micro-batch is refused there, naming the pass, instead of indexing out of bounds later.
TEST(Csv, ProgramsWithANegativeNumberAreRefused) {
  for (auto bad : {Action::single(Op::F, -1, 0), Action::single(Op::F, 0, -2)}) {
    std::vector<std::vector<Action>> programs{{Action::single(Op::F, 0, 0), bad}};
    try {
      schedule_from_programs(programs, "imported");
      ADD_FAILURE() << "no error for " << to_string(bad);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("imported: " + to_string(bad.pass[0]) + " names a negative"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace pipesim
