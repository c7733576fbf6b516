// Validation on hand-made broken schedules: each problem is refused (exit code 2) with a message that
// names the action, the rank and what is wrong; a deadlock names the cycle and marks the grid.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "schedules/csv.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

std::string refusal(const Schedule& s) {
  try {
    validate(s);
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    return e.what();
  }
  ADD_FAILURE() << "accepted:\n" << to_text(s);
  return "";
}

std::string refusal_csv(const std::string& csv) { return refusal(from_csv(csv)); }

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST(Validate, AcceptsAHandWrittenPipeline) {
  EXPECT_NO_THROW(validate(from_csv("0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1\n")));
  EXPECT_NO_THROW(validate(from_csv("0F0,0F1,0I0,0W0,0I1,0W1\n1F0,1I0,1F1,1I1,1W0,1W1\n")));
}

TEST(Validate, MissingAndDuplicatePasses) {
  EXPECT_HAS(refusal_csv("0F0,0F1,0B0\n1F0,1B0,1F1,1B1\n"), "missing 0B1 on rank 0");
  EXPECT_HAS(refusal_csv("0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1,1B1\n"), "pass 1B1 appears twice");
  EXPECT_HAS(refusal_csv("0F0,0F1,0I0,0B1\n1F0,1B0,1F1,1B1\n"), "missing 0W0 on rank 0");
  EXPECT_HAS(refusal_csv("0F0,0F1,0I0,0W0,0B0,0B1\n1F0,1B0,1F1,1B1\n"), "both a full backward (B) and a split one");
  EXPECT_HAS(refusal_csv("0F0,0F1,0W0,0B1\n1F0,1B0,1F1,1B1\n"), "missing 0I0 on rank 0");
}

TEST(Validate, PassesBeforeWhatTheyNeedOnTheSameRank) {
  EXPECT_HAS(refusal_csv("0F0,0F1,0W0,0I0,0B1\n1F0,1B0,1F1,1B1\n"),
             "rank 0 step 2: 0W0 needs 0I0, which runs later on rank 0 (step 3)");
  EXPECT_HAS(refusal_csv("0B0,0F0,0F1,0B1\n1F0,1B0,1F1,1B1\n"), "0B0 needs 0F0, which runs later");
  // A V placement: stage 1 and stage 2 both on rank 1; stage 2's forward needs stage 1's.
  EXPECT_HAS(refusal_csv("0F0,3F0,3B0,0B0\n2F0,1F0,2B0,1B0\n"), "2F0 needs 1F0, which runs later on rank 1");
  // An overlapped pair cannot hold the backward of its own forward.
  EXPECT_HAS(refusal_csv("0F0,(0F1;0B1)OVERLAP_F_B,0B0\n1F0,1B0,1F1,1B1\n"), "pairs 0B1 with 0F1, which it needs first");
}

TEST(Validate, CrossRankDeadlockShowsCycleAndGrid) {
  // Rank 0 waits for the gradient of micro-batch 0 before it sends forward micro-batch 1; rank 1 runs
  // forward 1 before backward 0.
  auto message = refusal_csv("0F0,0B0,0F1,0B1\n1F0,1F1,1B0,1B1\n");
  EXPECT_HAS(message, "deadlock");
  EXPECT_HAS(message, "1F1 (rank 1, step 1) waits for data from 0F1 (rank 0, step 2)");
  EXPECT_HAS(message, "0F1 (rank 0, step 2) runs after 0B0 (rank 0, step 1)");
  EXPECT_HAS(message, "0B0 (rank 0, step 1) waits for data from 1B0 (rank 1, step 2)");
  EXPECT_HAS(message, "rank 0 at step 1, 0B0");
  EXPECT_HAS(message, "rank 1 at step 1, 1F1");
  EXPECT_HAS(message, "[1F1]");
  EXPECT_HAS(message, "Step 1: [0B0]");
  EXPECT_HAS(message, "<-- blocked here");
}

TEST(Validate, LongDeadlockGridIsElided) {
  // Rank 0 delays forward 53 past backward 51, which waits (through ranks 1..3) on forward 53.
  auto s = generate_schedule("1f1b", {4, 64, 2});
  auto& p0 = s.programs[0];
  p0.erase(std::find(p0.begin(), p0.end(), Action::single(Op::F, 0, 53)));
  p0.insert(std::find(p0.begin(), p0.end(), Action::single(Op::B, 0, 51)) + 1, Action::single(Op::F, 0, 53));
  auto message = refusal(s);
  EXPECT_HAS(message, "deadlock");
  EXPECT_HAS(message, "0B51 (rank 0, step 105) waits for data from 1B51");
  EXPECT_HAS(message, "...");
  EXPECT_LT(std::count(message.begin(), message.end(), '\n'), 40);
}

TEST(Validate, WrongPlacementAndRoute) {
  auto s = from_csv("0F0,0F1,0B0,0B1\n1F0,1B0,1F1,1B1\n");
  s.programs[0].push_back(Action::single(Op::F, 1, 0));
  EXPECT_HAS(refusal(s), "rank 0 step 4: 1F0 is on rank 0, but stage 1 belongs to rank 1");
  auto t = generate_schedule("dualpipe", {2, 4, 2});
  t.programs[0].push_back(Action::single(Op::F, 0, 3));  // micro-batch 3 flows in the other direction
  EXPECT_HAS(refusal(t), "micro-batch 3 does not visit stage 0 (its stages are 2 3)");
}

// A Pass numbers stages in 24 bits: a schedule with more stages (a JSON header can say so) is refused.
TEST(Validate, StagesPastTheLargestNumber) {
  auto s = from_csv("0F0,0B0\n");
  s.stages = kMaxStages + 1;
  s.stage_to_rank.assign(static_cast<std::size_t>(s.stages), 0);
  EXPECT_HAS(refusal(s), "stages is 8388609; pipesim numbers at most 8388608 stages");
}

TEST(Validate, LoweredScheduleNeedsMatchedCommunication) {
  auto s = lower(generate_schedule("1f1b", {2, 2, 2}));
  EXPECT_NO_THROW(validate(s));
  auto missing = s;
  std::erase_if(missing.programs[1], [](const Action& a) { return a.op == Op::RecvF && a.microbatch() == 1; });
  EXPECT_HAS(refusal(missing), "missing 1RECV_F1 on rank 1");
  auto extra = s;
  extra.programs[1].push_back(Action::single(Op::SendF, 1, 0));  // the last stage has nobody to send to
  EXPECT_HAS(refusal(extra), "1SEND_F0 has no peer on another rank");
  auto early = s;  // rank 0 waits for gradient 1 before sending forward 1, which that gradient needs
  auto& p0 = early.programs[0];
  p0.erase(std::find(p0.begin(), p0.end(), Action::single(Op::RecvB, 0, 1)));
  p0.insert(p0.begin(), Action::single(Op::RecvB, 0, 1));
  auto message = refusal(early);
  EXPECT_HAS(message, "deadlock");
  EXPECT_HAS(message, "0RECV_B1 (rank 0, step 0) waits for data from 1SEND_B1");
  auto posted_early = s;  // a RECV posted early, as PyTorch places them, is fine when nothing waits in a cycle
  auto& q1 = posted_early.programs[1];
  q1.erase(std::find(q1.begin(), q1.end(), Action::single(Op::RecvF, 1, 1)));
  q1.insert(q1.begin() + 1, Action::single(Op::RecvF, 1, 1));
  EXPECT_NO_THROW(validate(posted_early)) << to_text(posted_early);
}

}  // namespace
}  // namespace pipesim
