// The MoE round trip's index plans and wire format (runtime/expert_exchange.hpp), by hand: where each slot
// goes, who sent what to which expert, the experts' row order and chunks, and the buffers' layout, with
// every malformed input refused by name.
#include "runtime/expert_exchange.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.hpp"

namespace pipesim {
namespace {

template <class F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "accepted; expected an error containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(ExpertPlan, DispatchByHand) {
  // Three tokens, two slots each; two EP ranks of two experts (rank = expert / 2).
  auto d = plan_dispatch({3, 0, 1, 2, 2, 3}, 2, 2);
  EXPECT_EQ(d.sent, (std::vector<int>{2, 4}));
  EXPECT_EQ(d.order, (std::vector<int>{1, 2, 0, 3, 4, 5}));
  EXPECT_EQ(d.position, (std::vector<int>{2, 0, 1, 3, 4, 5}));
  expect_error([] { plan_dispatch({0, 4}, 2, 2); }, "expert 4 of 4");
  expect_error([] { plan_dispatch({-1}, 2, 2); }, "expert -1");
}

TEST(ExpertPlan, RoutingExpertOrderAndChunksByHand) {
  // This rank holds experts 2 and 3; EP rank 0 sent rows for 3, 2, 3 and EP rank 1 one for 2.
  auto r = learn_routing({{3, 2, 3}, {2}}, 2, 2, "test dispatch");
  EXPECT_EQ(r.received, (std::vector<int>{3, 1}));
  using From = std::vector<std::pair<int, int>>;
  EXPECT_EQ(r.from[0], (From{{0, 1}, {1, 0}}));
  EXPECT_EQ(r.from[1], (From{{0, 0}, {0, 2}}));
  // Received rows end to end: rank 0's at 0..2, rank 1's at 3. Expert 2 reads 1 and 3, expert 3 reads 0 and 2.
  EXPECT_EQ(expert_major_rows(r), (std::vector<int>{1, 3, 0, 2}));
  auto chunks = expert_chunks(r);
  ASSERT_EQ(chunks.size(), 3u);
  auto same = [](const ExpertChunk& c, int e, int s, int b, int n) {
    return c.expert == e && c.source == s && c.begin == b && c.rows == n;
  };
  EXPECT_TRUE(same(chunks[0], 0, 0, 0, 1));
  EXPECT_TRUE(same(chunks[1], 0, 1, 1, 1));
  EXPECT_TRUE(same(chunks[2], 1, 0, 2, 2));
  expect_error([] { learn_routing({{2, 1}}, 2, 2, "test dispatch"); }, "test dispatch: EP rank 0 sent a row for expert 1");
}

TEST(ExpertWire, SplitAndJoinRoundTripAndRefuseMalformedBuffers) {
  const std::vector<double> rows{1, 2, 3, 4, 5, 6};  // three rows of two
  const std::vector<int> ids{5, 6, 7};
  auto buffers = split_rows(rows, {1, 2}, 2, &ids);
  EXPECT_EQ(buffers, (std::vector<std::vector<double>>{{1, 2, 5}, {3, 4, 5, 6, 6, 7}}));
  std::vector<int> count;
  std::vector<std::vector<int>> got_ids;
  EXPECT_EQ(join_rows(buffers, 2, count, &got_ids, "test"), rows);
  EXPECT_EQ(count, (std::vector<int>{1, 2}));
  EXPECT_EQ(got_ids, (std::vector<std::vector<int>>{{5}, {6, 7}}));
  // Without ids the counts are checked, not read.
  auto bare = split_rows(rows, {2, 1}, 2, nullptr);
  std::vector<int> want{2, 1};
  EXPECT_EQ(join_rows(bare, 2, want, nullptr, "test"), rows);

  expect_error([&] { split_rows(rows, {1, 1}, 2, nullptr); }, "6 elements and 0 ids for 2 rows");
  expect_error([&] { join_rows<double>({{1, 2}}, 2, count, &got_ids, "test"); }, "test: 2 elements from EP rank 0 are not whole rows");
  std::vector<int> wrong{1, 1};
  expect_error([&] { join_rows(bare, 2, wrong, nullptr, "test"); }, "test: 4 elements from EP rank 0, expected 1 rows of 2");
  std::vector<int> one{2};
  expect_error([&] { join_rows(bare, 2, one, nullptr, "test"); }, "2 buffers for 1 EP ranks");
  expect_error([&] { join_rows<double>({{1, 2, 2.5}}, 2, count, &got_ids, "test"); }, "sent expert id 2.5");
  expect_error([&] { join_rows<double>({{1, 2, -1}}, 2, count, &got_ids, "test"); }, "sent expert id -1");
}

}  // namespace
}  // namespace pipesim
