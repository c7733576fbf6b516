// The text form of actions: printing matches PyTorch pipelining's spelling and parses back exactly;
// malformed text is refused with a message that quotes it.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "schedules/action.hpp"

namespace pipesim {
namespace {

TEST(Action, PrintsPyTorchSpelling) {
  EXPECT_EQ(to_string(Action::single(Op::F, 0, 3)), "0F3");
  EXPECT_EQ(to_string(Action::single(Op::I, 1, 2)), "1I2");
  EXPECT_EQ(to_string(Action::single(Op::W, 1, 2)), "1W2");
  EXPECT_EQ(to_string(Action::single(Op::B, 0, 1)), "0B1");
  EXPECT_EQ(to_string(Action::single(Op::SendF, 2, 1)), "2SEND_F1");
  EXPECT_EQ(to_string(Action::single(Op::RecvF, 3, 1)), "3RECV_F1");
  EXPECT_EQ(to_string(Action::single(Op::SendB, 3, 0)), "3SEND_B0");
  EXPECT_EQ(to_string(Action::single(Op::RecvB, 2, 0)), "2RECV_B0");
  EXPECT_EQ(to_string(Action::overlap({Op::F, 0, 3}, {Op::B, 7, 1})), "(0F3;7B1)OVERLAP_F_B");
  EXPECT_EQ(to_string(Action::single(Op::F, 12, 4095)), "12F4095");
}

TEST(Action, ParsesBackExactly) {
  for (const char* text : {"0F3", "1I2", "1W2", "0B1", "2SEND_F1", "2RECV_F0", "7SEND_B12", "2RECV_B0",
                           "(0F3;7B1)OVERLAP_F_B", "(6F4;1I0)OVERLAP_F_B", "15F1023", "8388607B2147483647"}) {
    auto action = parse_action(text);
    EXPECT_EQ(to_string(action), text);
    EXPECT_EQ(parse_action(to_string(action)), action);
  }
  auto pair = parse_action("(0F3;7B1)OVERLAP_F_B");
  ASSERT_EQ(pair.op, Op::OverlapFB);
  ASSERT_EQ(pair.passes().size(), 2u);
  EXPECT_EQ(pair.passes()[0], (Pass{Op::F, 0, 3}));
  EXPECT_EQ(pair.passes()[1], (Pass{Op::B, 7, 1}));
  EXPECT_EQ(parse_action("  3W2 "), Action::single(Op::W, 3, 2));  // cells may carry spaces
}

// A Pass holds its stage in 24 bits: a larger stage number is refused where it is read, never wrapped.
TEST(Action, RefusesAStagePastTheLargest) {
  for (const char* text : {"8388608F0", "(8388608F1;0B0)OVERLAP_F_B", "(0F1;16777217B0)OVERLAP_F_B"}) {
    try {
      parse_action(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("past the largest stage number, 8388607"), std::string::npos) << e.what();
    }
  }
}

TEST(Action, RefusesMalformedText) {
  for (const char* text : {"", "F0", "0X1", "0F", "0F1x", "-1F0", "0UNSHARD", "0F99999999999",
                           "(0F1;2F3)OVERLAP_F_B", "(0B1;0F1)OVERLAP_F_B", "(0F1 2B3)OVERLAP_F_B",
                           "(0F1;2B3)", "(0F1;2B3)OVERLAP"}) {
    try {
      parse_action(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("invalid action"), std::string::npos) << e.what();
      EXPECT_EQ(e.exit_code(), 2);
    }
  }
}

}  // namespace
}  // namespace pipesim
