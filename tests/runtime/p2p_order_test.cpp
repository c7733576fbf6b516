// Which links a lowered schedule uses and whether each link's sends and receives come in the same order
// (what a tag-less backend such as NCCL needs): a hand-lowered 1F1B, a hand-made schedule whose receiver
// takes micro-batches in the other order, and every registry schedule at 2 and 4 ranks.
#include <gtest/gtest.h>

#include "runtime/p2p_order.hpp"
#include "schedules/csv.hpp"
#include "schedules/lower.hpp"
#include "schedules/registry.hpp"

namespace pipesim {
namespace {

TEST(P2pOrder, OneFOneBSendsAndReceivesInOneOrder) {
  auto order = p2p_order(lower(generate_schedule("1f1b", {2, 4, 2})));
  EXPECT_EQ(order.channels, (std::vector<P2pChannel>{{0, 1, 0}, {1, 0, 1}}));  // activations down, gradients up
  EXPECT_TRUE(order.matched());
}

TEST(P2pOrder, ReceiverTakingMicrobatchesInAnotherOrderIsNamed) {
  auto s = from_csv("0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1\n"
                    "1RECV_F1,1F1,1B1,1SEND_B1,1RECV_F0,1F0,1B0,1SEND_B0\n");
  auto order = p2p_order(s);
  ASSERT_EQ(order.mismatches.size(), 2u);
  EXPECT_EQ(order.mismatches[0],
            "rank 0 -> 1 (activations): message 1 is sent as the activation into stage 1 of micro-batch 0 but "
            "received as the activation into stage 1 of micro-batch 1");
  EXPECT_EQ(order.mismatches[1],
            "rank 1 -> 0 (gradients): message 1 is sent as the gradient into stage 0 of micro-batch 1 but "
            "received as the gradient into stage 0 of micro-batch 0");
}

// Every generated schedule, lowered, at 2, 4 and 8 ranks and 1, 2 and 4 micro-batches per rank: each
// channel's two sides come in one order. Over a whole link they do not for V-shaped and DualPipe schedules
// (ZB-V at 4 ranks, 8 micro-batches: rank 0 sends activation 6 before rank 1 has asked for it, and rank 1
// first takes gradient 0), which is why channels split the directions.
TEST(P2pOrder, EveryRegistryScheduleIsOrderedOnEveryChannel) {
  for (auto& info : schedule_registry())
    for (int ranks : {2, 4, 8})
      for (int per_rank : {1, 2, 4}) {
        GeneratorOptions options{ranks, per_rank * ranks, 2};
        if (info.supports(options)) continue;  // a size problem: not this size
        auto order = p2p_order(lower(generate_schedule(info.name, options)));
        EXPECT_TRUE(order.matched()) << info.name << " at " << ranks << " ranks: " << order.mismatches.front();
        EXPECT_FALSE(order.channels.empty()) << info.name;
      }
}

}  // namespace
}  // namespace pipesim
