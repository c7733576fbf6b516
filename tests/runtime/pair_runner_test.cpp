// PairRunner: two halves taking turns at their pauses, on two threads, one at a time, in a fixed order; a
// half that fails stops the other at its next pause and its error is the one reported.
#include "runtime/pair_runner.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"

namespace pipesim {
namespace {

TEST(PairRunner, HalvesTakeTurnsAtTheirPausesOnTwoThreads) {
  std::thread::id helper;
  PairRunner runner([&] { helper = std::this_thread::get_id(); });
  std::vector<std::string> order;
  std::thread::id first_id, second_id;
  for (int round = 0; round < 3; ++round) {  // the helper thread serves one pair after another
    order.clear();
    runner.run(
        [&] {
          first_id = std::this_thread::get_id();
          order.push_back("a1");
          runner.pause();
          order.push_back("a2");
          runner.pause();
          order.push_back("a3");
          runner.pause();  // the second half has ended: returns at once
          order.push_back("a4");
        },
        [&] {
          second_id = std::this_thread::get_id();
          order.push_back("b1");
          runner.pause();
          order.push_back("b2");
        });
    EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3", "a4"})) << "round " << round;
    EXPECT_EQ(first_id, std::this_thread::get_id());
    EXPECT_EQ(second_id, helper);
    EXPECT_NE(second_id, first_id);
  }
  runner.pause();  // outside run(): nothing to hand over to
}

TEST(PairRunner, AFailedHalfStopsTheOtherAtItsNextPauseAndItsErrorIsReported) {
  PairRunner runner;
  std::vector<std::string> order;
  auto expect_error = [&](const std::function<void()>& first, const std::function<void()>& second, const char* what) {
    order.clear();
    try {
      runner.run(first, second);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), what);
    }
  };
  // The first half fails after its first pause: the second stops at its pause.
  expect_error(
      [&] {
        order.push_back("a1");
        runner.pause();
        throw Error("first failed");
      },
      [&] {
        order.push_back("b1");
        runner.pause();
        order.push_back("b2");
      },
      "first failed");
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1"}));
  // The second fails: the first stops at its next pause.
  expect_error(
      [&] {
        order.push_back("a1");
        runner.pause();
        order.push_back("a2");
      },
      [&] {
        order.push_back("b1");
        throw Error("second failed");
      },
      "second failed");
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1"}));
  // The first fails before any pause: the second never starts.
  expect_error([&] { throw Error("at once"); }, [&] { order.push_back("b1"); }, "at once");
  EXPECT_TRUE(order.empty());
  // And the runner still works afterwards.
  runner.run([&] { order.push_back("a"); }, [&] { order.push_back("b"); });
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
}

TEST(PairRunner, AHelperThatCannotStartFailsTheConstructorAndTheStopHookRunsOnTheHelper) {
  try {
    PairRunner runner([] { throw Error("no GPU context"); });
    ADD_FAILURE() << "constructed";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "no GPU context");
  }
  std::thread::id started, stopped;
  {
    PairRunner runner([&] { started = std::this_thread::get_id(); }, [&] { stopped = std::this_thread::get_id(); });
    EXPECT_NE(started, std::thread::id());  // the start hook ran before the constructor returned
  }
  EXPECT_EQ(stopped, started);
}

TEST(PairRunner, TheFirstHalfEndingWhileTheSecondIsPausedLetsItFinish) {
  PairRunner runner;
  std::vector<std::string> order;
  runner.run(
      [&] {
        order.push_back("a1");
        runner.pause();
        order.push_back("a2");
      },
      [&] {
        order.push_back("b1");
        runner.pause();
        order.push_back("b2");
        runner.pause();
        order.push_back("b3");
      });
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1", "a2", "b2", "b3"}));
}

TEST(PairRunner, AThreadThatIsNoHalfDoesNotTakeATurn) {
  PairRunner runner;
  std::vector<std::string> order;
  runner.run(
      [&] {
        order.push_back("a1");
        std::thread other([&] { runner.pause(); });  // during the first half's turn: returns at once
        other.join();
        order.push_back("a2");
        runner.pause();
        order.push_back("a3");
      },
      [&] { order.push_back("b1"); });
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "a2", "b1", "a3"}));
}

}  // namespace
}  // namespace pipesim
