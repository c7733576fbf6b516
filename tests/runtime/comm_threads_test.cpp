// The threaded Comm against what the runtime expects of MPI: tagged point-to-point in send order, receives
// posted before or after their send, every collective, sub-groups from split; and the failure paths: a
// rank that throws stops the others, abort() throws in every rank, and a wait nobody can satisfy is
// reported as a deadlock instead of hanging.
#include "runtime/comm_threads.hpp"

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

TEST(ThreadComm, PointToPointKeepsSendOrderPerTag) {
  run_on_threads(2, [](Comm& comm) {
    if (comm.rank() == 0) {
      for (int i = 0; i < 3; ++i) comm.wait(comm.isend(1, 5, &i, sizeof(i)));
      int other = 42;
      comm.wait(comm.isend(1, 6, &other, sizeof(other)));
      return;
    }
    int tagged = 0;  // tag 6 first: it does not wait behind tag 5's messages
    comm.wait(comm.irecv(0, 6, &tagged, sizeof(tagged)));
    EXPECT_EQ(tagged, 42);
    int got[3] = {-1, -1, -1};
    std::vector<Comm::Request> requests;
    for (int i = 0; i < 3; ++i) requests.push_back(comm.irecv(0, 5, &got[i], sizeof(int)));
    for (auto r : requests) comm.wait(r);
    EXPECT_EQ(got[0], 0);
    EXPECT_EQ(got[1], 1);
    EXPECT_EQ(got[2], 2);
  });
}

TEST(ThreadComm, ReceivePostedBeforeItsSend) {
  run_on_threads(2, [](Comm& comm) {
    double value = 0;
    if (comm.rank() == 1) {
      auto request = comm.irecv(0, 1, &value, sizeof(value));
      EXPECT_FALSE(comm.test(request)) << "completed before anything was sent";
      comm.barrier();  // rank 0 sends after this
      // Polling is not waiting, so the deadlock detector cannot end it: bound it instead.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!comm.test(request) && std::chrono::steady_clock::now() < deadline) comm.progress();
      ASSERT_TRUE(comm.test(request)) << "the send never arrived";
      EXPECT_EQ(value, 2.5);
    } else {
      comm.barrier();
      value = 2.5;
      comm.wait(comm.isend(1, 1, &value, sizeof(value)));
    }
  });
}

TEST(ThreadComm, Collectives) {
  run_on_threads(3, [](Comm& comm) {
    int r = comm.rank();
    double sums[2] = {double(r), 1.0};
    comm.all_reduce_sum(sums, 2);
    EXPECT_EQ(sums[0], 3.0);
    EXPECT_EQ(sums[1], 3.0);
    int root_value = r == 2 ? 7 : 0;
    comm.broadcast(&root_value, sizeof(root_value), 2);
    EXPECT_EQ(root_value, 7);
    auto gathered = comm.gather(std::string(std::size_t(r + 1), char('a' + r)));
    if (r == 0)
      EXPECT_EQ(gathered, (std::vector<std::string>{"a", "bb", "ccc"}));
    else
      EXPECT_TRUE(gathered.empty());
    std::vector<std::vector<char>> send(3);
    for (int p = 0; p < 3; ++p) send[std::size_t(p)].assign(std::size_t(p + 1), char('0' + r));  // r's bytes to p
    auto received = comm.all_to_all_v(send);
    ASSERT_EQ(received.size(), 3u);
    for (int from = 0; from < 3; ++from)
      EXPECT_EQ(received[std::size_t(from)], std::vector<char>(std::size_t(r + 1), char('0' + from)));
    comm.barrier();
  });
}

TEST(ThreadComm, SplitMakesOrderedSubGroups) {
  run_on_threads(4, [](Comm& comm) {
    int r = comm.rank();
    auto group = comm.split(r % 2, -r);  // colors {0, 2} and {1, 3}, ordered by descending world rank
    ASSERT_EQ(group->size(), 2);
    EXPECT_EQ(group->rank(), r < 2 ? 1 : 0);
    double value = r;
    group->all_reduce_sum(&value, 1);
    EXPECT_EQ(value, r % 2 == 0 ? 2.0 : 4.0);
    int peer = 1 - group->rank(), mine = r, theirs = -1;  // point-to-point inside the group, by group rank
    auto in = group->irecv(peer, 3, &theirs, sizeof(theirs));
    group->wait(group->isend(peer, 3, &mine, sizeof(mine)));
    group->wait(in);
    EXPECT_EQ(theirs, r < 2 ? r + 2 : r - 2);
  });
}

TEST(ThreadComm, AFailingRankStopsTheOthers) {
  std::atomic<int> stopped = 0;
  try {
    run_on_threads(3, [&](Comm& comm) {
      if (comm.rank() == 1) throw Error("rank 1 gave up", Error::Kind::Input);
      try {
        if (comm.rank() == 0) {
          int x = 0;
          comm.wait(comm.irecv(1, 0, &x, sizeof(x)));  // never sent
        } else {
          comm.barrier();  // rank 1 never comes
        }
      } catch (const Error&) {
        ++stopped;
        throw;
      }
    });
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "rank 1 gave up");  // the first failure, not the aborts it caused
    EXPECT_EQ(e.kind(), Error::Kind::Input);
  }
  EXPECT_EQ(stopped, 2);
}

TEST(ThreadComm, AbortThrowsInEveryRank) {
  std::atomic<int> aborted = 0;
  try {
    run_on_threads(2, [&](Comm& comm) {
      try {
        if (comm.rank() == 0) comm.abort("stop now", 2);
        comm.barrier();
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("stop now"), std::string::npos) << e.what();
        ++aborted;
        throw;
      }
    });
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::Input);
  }
  EXPECT_EQ(aborted, 2);
}

TEST(ThreadComm, DeadlockIsReportedNotHung) {
  try {
    run_on_threads(2, [](Comm& comm) {
      int x = 0;
      comm.wait(comm.irecv(1 - comm.rank(), 9, &x, sizeof(x)));  // both receive first: nobody sends
    });
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("deadlock"), std::string::npos) << what;
    EXPECT_NE(what.find("tag 9"), std::string::npos) << what;
  }
  // A rank that ends while another still waits on it is a deadlock too.
  EXPECT_THROW(run_on_threads(2,
                              [](Comm& comm) {
                                if (comm.rank() == 0) comm.barrier();
                              }),
               Error);
}

TEST(ThreadComm, RefusesAMessageLargerThanItsReceive) {
  EXPECT_THROW(run_on_threads(2,
                              [](Comm& comm) {
                                double big[2] = {1, 2}, small = 0;
                                if (comm.rank() == 0) comm.wait(comm.isend(1, 0, big, sizeof(big)));
                                if (comm.rank() == 1) comm.wait(comm.irecv(0, 0, &small, sizeof(small)));
                              }),
               Error);
}

}  // namespace
}  // namespace pipesim
