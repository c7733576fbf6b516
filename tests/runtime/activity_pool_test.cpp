// How GPU activity is sorted out by owner (runtime/activity_pool.hpp), as CUPTI delivers it: records,
// their API calls and their operators in any order and buffer. Each owner takes what its thread launched,
// tagged with its operator, however late the correlations arrive; what belongs to nobody, and correlations
// nothing matched, go after two takes of every owner; with one owner, everything is its.
#include "runtime/activity_pool.hpp"

#include <gtest/gtest.h>

namespace pipesim {
namespace {

GpuActivity kernel(std::uint32_t correlation, std::int64_t start, std::uint32_t stream = 7) {
  return {"k" + std::to_string(correlation), stream, start, start + 10, 0, correlation, 0};
}

std::vector<std::uint32_t> correlations(const std::vector<GpuActivity>& v) {
  std::vector<std::uint32_t> out;
  for (auto& a : v) out.push_back(a.correlation);
  return out;
}

TEST(ActivityPool, EachOwnerTakesWhatItsThreadLaunchedWithItsOperator) {
  ActivityPool pool;
  int a = pool.add_owner(100), b = pool.add_owner(200);
  // Both owners launch on the same stream id (each in its own context): the thread decides, not the stream.
  pool.add_activity(kernel(1, 50));
  pool.add_activity(kernel(2, 10));
  pool.add_activity(kernel(3, 30));
  pool.add_call(1, 100);
  pool.add_call(2, 100);
  pool.add_call(3, 200);
  pool.add_operator(1, 11);
  pool.add_operator(3, 33);
  auto mine = pool.take(a);
  EXPECT_EQ(correlations(mine), (std::vector<std::uint32_t>{2, 1}));  // by start
  EXPECT_EQ(mine[0].op, 0u);                                          // launched outside any operator
  EXPECT_EQ(mine[1].op, 11u);
  auto theirs = pool.take(b);
  ASSERT_EQ(theirs.size(), 1u);
  EXPECT_EQ(theirs[0].op, 33u);
  EXPECT_EQ(pool.pending(), 0u);
}

TEST(ActivityPool, LateCorrelationsStillTagTheirRecord) {
  ActivityPool pool;
  int a = pool.add_owner(100);
  pool.add_owner(200);
  pool.add_activity(kernel(5, 0));
  EXPECT_TRUE(pool.take(a).empty());  // its call has not arrived: it waits
  pool.add_call(5, 100);
  pool.add_operator(5, 55);
  auto got = pool.take(a);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].op, 55u);
}

// An owner takes once its work is done: its calls still unmatched then launched nothing and go at once
// (with their operators); another owner's stay for its turn. Two activities of one call are both tagged.
TEST(ActivityPool, AnOwnersCallsThatLaunchedNothingGoAtItsTake) {
  ActivityPool pool;
  int a = pool.add_owner(100), b = pool.add_owner(200);
  pool.add_call(1, 100);  // a synchronization inside an operator
  pool.add_operator(1, 11);
  pool.add_call(2, 200);  // the other owner's launch, its kernel not here yet
  EXPECT_TRUE(pool.take(a).empty());
  EXPECT_EQ(pool.pending(), 1u);
  pool.add_activity(kernel(2, 0));
  pool.add_activity(kernel(2, 5));  // one call, two activities (a library's launch of two kernels)
  pool.add_operator(2, 22);
  auto got = pool.take(b);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].op, 22u);
  EXPECT_EQ(got[1].op, 22u);
  EXPECT_EQ(pool.pending(), 0u);
}

TEST(ActivityPool, WhatNobodyClaimsGoesAfterTwoTakesOfEveryOwner) {
  ActivityPool pool;
  int a = pool.add_owner(100), b = pool.add_owner(200);
  pool.add_activity(kernel(1, 0));  // launched by a thread that is no owner (a library's own)
  pool.add_call(1, 999);
  pool.add_activity(kernel(2, 0));  // its call never arrives
  pool.add_operator(3, 33);         // an operator's call that launched nothing
  pool.add_call(4, 100);            // an API call that launched nothing
  for (int i = 0; i < 4; ++i) {     // patience: 2 x 2 owners
    EXPECT_TRUE(pool.take(i % 2 ? b : a).empty());
    EXPECT_GT(pool.pending(), 0u);
  }
  EXPECT_TRUE(pool.take(a).empty());
  EXPECT_EQ(pool.pending(), 0u);
  // Another owner's activity waits while that owner has not taken it (within the patience).
  pool.add_activity(kernel(9, 0));
  pool.add_call(9, 200);
  EXPECT_TRUE(pool.take(a).empty());
  EXPECT_EQ(correlations(pool.take(b)), (std::vector<std::uint32_t>{9}));
}

TEST(ActivityPool, OneOwnerTakesEverything) {
  ActivityPool pool;
  int only = pool.add_owner(100);
  pool.add_activity(kernel(1, 0));  // no call record
  pool.add_activity(kernel(2, 5));
  pool.add_call(2, 4242);           // another thread of the process (a copy made by a library)
  pool.add_operator(2, 22);
  auto got = pool.take(only);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].op, 22u);
  EXPECT_EQ(pool.pending(), 0u);
}

// An overlapped pair's second thread launches for its rank while it is added, and no longer once removed
// (a later thread of another rank may get its id).
TEST(ActivityPool, AnOwnersSecondThreadLaunchesForItUntilRemoved) {
  ActivityPool pool;
  int a = pool.add_owner(100), b = pool.add_owner(200);
  pool.add_thread(a, 101);
  pool.add_activity(kernel(1, 10));
  pool.add_activity(kernel(2, 20));
  pool.add_call(1, 100);
  pool.add_call(2, 101);  // the helper thread
  pool.add_operator(2, 22);
  auto got = pool.take(a);
  EXPECT_EQ(correlations(got), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(got[1].op, 22u);
  EXPECT_TRUE(pool.take(b).empty());
  pool.remove_thread(a, 101);
  pool.remove_thread(a, 100);  // an owner's own thread stays
  pool.add_thread(b, 101);     // the id comes back for the other rank
  pool.add_activity(kernel(3, 30));
  pool.add_activity(kernel(4, 40));
  pool.add_call(3, 101);
  pool.add_call(4, 100);
  EXPECT_EQ(correlations(pool.take(a)), (std::vector<std::uint32_t>{4}));
  EXPECT_EQ(correlations(pool.take(b)), (std::vector<std::uint32_t>{3}));
}

}  // namespace
}  // namespace pipesim
