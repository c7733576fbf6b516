// The threaded Comm (see comm_threads.hpp). One mutex guards the whole world: every rank's channels,
// collective rounds and waits, so a rank about to block can check, exactly, whether any other rank could
// still wake it; if none can, that is a deadlock. A collective is a round every member deposits into and
// reads from under the lock; each rank counts its own rounds, so members meet in the same round as long as
// they call collectives in the same order, which is what MPI asks of them too.
#include "runtime/comm_threads.hpp"

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

using Bytes = std::vector<char>;

struct Pending {  // a receive: done once a message has been copied into its buffer
  bool done = false;
  void* buffer = nullptr;
  std::size_t bytes = 0;
  std::string error;  // a message larger than the buffer, reported by the receiver
};

class World {
 public:
  explicit World(int size) : waiting_(static_cast<std::size_t>(size)), finished_(static_cast<std::size_t>(size), false) {}
  std::mutex mutex;

  // Blocks the thread of world rank `rank` (the caller holds `lock`) until ready(); throws Error when the
  // world is aborted or no rank could ever make ready() true.
  void block(std::unique_lock<std::mutex>& lock, int rank, const std::string& what, const std::function<bool()>& ready) {
    auto& slot = waiting_[static_cast<std::size_t>(rank)];
    for (;;) {
      if (aborted_ || ready()) {
        slot.reset();
        check();
        return;
      }
      slot = Wait{what, &ready};
      if (stuck()) {
        abort(deadlock_message());
        continue;
      }
      changed_.wait(lock);
    }
  }
  void check() const {  // lock held
    if (aborted_) throw Error(message_, kind_);
  }
  void abort(const std::string& message, Error::Kind kind = Error::Kind::Internal) {  // lock held
    if (!aborted_) {
      aborted_ = true;
      message_ = message;
      kind_ = kind;
    }
    changed_.notify_all();
  }
  void notify() { changed_.notify_all(); }  // lock held: something a waiter may wait for happened
  void finish(int rank) {
    std::lock_guard lock(mutex);
    finished_[static_cast<std::size_t>(rank)] = true;
    waiting_[static_cast<std::size_t>(rank)].reset();
    if (!aborted_ && stuck()) abort(deadlock_message());
    changed_.notify_all();
  }

 private:
  struct Wait {
    std::string what;
    const std::function<bool()>* ready;
  };
  // Every rank that has not finished waits, and none of the waits can complete.
  bool stuck() const {
    bool any = false;
    for (std::size_t r = 0; r < waiting_.size(); ++r) {
      if (finished_[r]) continue;
      if (!waiting_[r] || (*waiting_[r]->ready)()) return false;
      any = true;
    }
    return any;
  }
  std::string deadlock_message() const {
    std::string waits;
    for (std::size_t r = 0; r < waiting_.size(); ++r)
      if (waiting_[r]) waits += fmt::format("{}rank {} waits for {}", waits.empty() ? "" : "; ", r, waiting_[r]->what);
    return fmt::format("threaded comm: deadlock, no rank can proceed: {}", waits);
  }
  std::condition_variable changed_;
  std::vector<std::optional<Wait>> waiting_;  // [world rank]
  std::vector<bool> finished_;
  bool aborted_ = false;
  std::string message_;
  Error::Kind kind_ = Error::Kind::Internal;
};

// A communicator: the world or a sub-group of it.
struct Group {
  std::shared_ptr<World> world;
  std::vector<int> members;  // [group rank] -> world rank
  struct Channel {           // one (from, to, tag): messages not yet received, or receives not yet matched
    std::deque<Bytes> messages;
    std::deque<std::shared_ptr<Pending>> receivers;
  };
  std::map<std::tuple<int, int, int>, Channel> channels;
  struct Round {
    std::vector<std::vector<Bytes>> parts;  // [group rank] -> what it deposited
    int arrived = 0, left = 0;
    std::map<int, std::shared_ptr<Group>> splits;  // split(): the new group of each color
  };
  std::map<std::uint64_t, Round> rounds;
};

void deliver(Pending& receive, const char* data, std::size_t bytes) {
  if (bytes > receive.bytes)
    receive.error = fmt::format("threaded comm: a {}-byte message for a {}-byte receive", bytes, receive.bytes);
  else
    std::memcpy(receive.buffer, data, bytes);
  receive.done = true;
}

class ThreadComm : public Comm {
 public:
  ThreadComm(std::shared_ptr<Group> group, int rank, bool owns_world_rank)
      : group_(std::move(group)), world_(group_->world), rank_(rank), owns_world_rank_(owns_world_rank) {}
  ~ThreadComm() override {
    if (owns_world_rank_) world_->finish(me());
  }
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(group_->members.size()); }
  std::int64_t max_tag() const override { return INT_MAX; }
  bool other_threads() const override { return true; }  // its state is the rank's, not the thread's

  Request isend(int peer, int tag, const void* data, std::size_t bytes) override {
    std::lock_guard lock(world_->mutex);
    world_->check();
    check_peer(peer, "isend");
    auto& channel = group_->channels[{rank_, peer, tag}];
    auto* begin = static_cast<const char*>(data);
    if (!channel.receivers.empty()) {
      deliver(*channel.receivers.front(), begin, bytes);
      channel.receivers.pop_front();
      world_->notify();
    } else {
      channel.messages.emplace_back(begin, begin + bytes);
    }
    return add(nullptr);  // eager: complete at once
  }
  Request irecv(int peer, int tag, void* data, std::size_t bytes) override {
    std::lock_guard lock(world_->mutex);
    world_->check();
    check_peer(peer, "irecv");
    auto receive = std::make_shared<Pending>(Pending{false, data, bytes, {}});
    auto& channel = group_->channels[{peer, rank_, tag}];
    if (!channel.messages.empty()) {
      deliver(*receive, channel.messages.front().data(), channel.messages.front().size());
      channel.messages.pop_front();
    } else {
      channel.receivers.push_back(receive);
    }
    auto handle = add(std::move(receive));
    what_[static_cast<std::size_t>(handle)] = fmt::format("a message from rank {} with tag {}", peer, tag);
    return handle;
  }
  bool test(Request request) override {
    std::lock_guard lock(world_->mutex);
    world_->check();
    auto& slot = requests_.at(static_cast<std::size_t>(request));
    if (slot && !slot->done) return false;
    release(request);
    return true;
  }
  void wait(Request request) override {
    std::unique_lock lock(world_->mutex);
    auto& slot = requests_.at(static_cast<std::size_t>(request));
    if (slot) {
      auto receive = slot;
      std::function<bool()> ready = [&] { return receive->done; };
      world_->block(lock, me(), what_[static_cast<std::size_t>(request)], ready);
    }
    world_->check();
    release(request);
  }
  void progress() override {
    std::lock_guard lock(world_->mutex);
    world_->check();
  }

  void all_reduce_sum(double* data, std::size_t count) override {
    auto bytes = count * sizeof(double);
    collective("all-reduce", {Bytes(reinterpret_cast<char*>(data), reinterpret_cast<char*>(data) + bytes)},
               [&](const Group::Round& round) {
                 for (std::size_t i = 0; i < count; ++i) {  // the same order on every rank: equal bits everywhere
                   double sum = 0;
                   for (auto& part : round.parts) {
                     double value;
                     std::memcpy(&value, part[0].data() + i * sizeof(double), sizeof(double));
                     sum += value;
                   }
                   data[i] = sum;
                 }
               });
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* begin = static_cast<char*>(data);
    collective("broadcast", {rank_ == root ? Bytes(begin, begin + bytes) : Bytes()}, [&](const Group::Round& round) {
      auto& from = round.parts.at(static_cast<std::size_t>(root))[0];
      if (from.size() != bytes)
        throw Error(fmt::format("threaded comm: broadcast of {} bytes, root sent {}", bytes, from.size()),
                    Error::Kind::Internal);
      std::memcpy(data, from.data(), bytes);
    });
  }
  std::vector<std::string> gather(const std::string& mine) override {
    std::vector<std::string> out;
    collective("gather", {Bytes(mine.begin(), mine.end())}, [&](const Group::Round& round) {
      if (rank_ == 0)
        for (auto& part : round.parts) out.emplace_back(part[0].begin(), part[0].end());
    });
    return out;
  }
  void barrier() override {
    collective("barrier", {}, [](const Group::Round&) {});
  }
  std::vector<std::vector<char>> all_to_all_v(const std::vector<std::vector<char>>& send) override {
    if (static_cast<int>(send.size()) != size())
      throw Error("all-to-all: one buffer per rank expected", Error::Kind::Internal);
    std::vector<std::vector<char>> out;
    collective("all-to-all", send, [&](const Group::Round& round) {
      for (auto& part : round.parts) out.push_back(part[static_cast<std::size_t>(rank_)]);
    });
    return out;
  }
  std::unique_ptr<Comm> split(int color, int key) override {
    int ints[2] = {color, key};
    auto* begin = reinterpret_cast<char*>(ints);
    std::unique_ptr<Comm> out;
    collective("split", {Bytes(begin, begin + sizeof(ints))}, [&](Group::Round& round) {
      std::vector<std::tuple<int, int>> mine;  // (key, group rank) of every member with my color
      for (std::size_t r = 0; r < round.parts.size(); ++r) {
        int theirs[2];
        std::memcpy(theirs, round.parts[r][0].data(), sizeof(theirs));
        if (theirs[0] == color) mine.emplace_back(theirs[1], static_cast<int>(r));
      }
      std::sort(mine.begin(), mine.end());
      auto& group = round.splits[color];
      if (!group) {
        group = std::make_shared<Group>();
        group->world = world_;
        for (auto& [k, r] : mine) group->members.push_back(group_->members[static_cast<std::size_t>(r)]);
      }
      int new_rank = static_cast<int>(std::find(mine.begin(), mine.end(), std::tuple{key, rank_}) - mine.begin());
      out = std::make_unique<ThreadComm>(group, new_rank, false);
    });
    return out;
  }
  [[noreturn]] void abort(const std::string& message, int code) override {
    auto kind = code == 2 ? Error::Kind::Input : Error::Kind::Internal;
    {
      std::lock_guard lock(world_->mutex);
      world_->abort(fmt::format("rank {}: {}", me(), message), kind);
    }
    throw Error(message, kind);
  }

 private:
  int me() const { return group_->members[static_cast<std::size_t>(rank_)]; }  // world rank: the thread
  void check_peer(int peer, const char* what) const {
    if (peer < 0 || peer >= size())
      throw Error(fmt::format("threaded comm: {} with rank {} of {}", what, peer, size()), Error::Kind::Internal);
  }
  Request add(std::shared_ptr<Pending> receive) {  // lock held
    for (std::size_t i = 0; i < requests_.size(); ++i)
      if (!used_[i]) {
        used_[i] = true;
        requests_[i] = std::move(receive);
        return static_cast<Request>(i);
      }
    requests_.push_back(std::move(receive));
    used_.push_back(true);
    what_.emplace_back();
    return static_cast<Request>(requests_.size() - 1);
  }
  void release(Request request) {  // lock held; a receive's error surfaces here
    auto i = static_cast<std::size_t>(request);
    auto receive = std::move(requests_[i]);
    requests_[i].reset();
    used_[i] = false;
    if (receive && !receive->error.empty()) throw Error(receive->error, Error::Kind::Internal);
  }
  // Deposits `mine`, waits for every member's, then lets `take` read the round (under the lock).
  template <class Take>
  void collective(const char* what, std::vector<Bytes> mine, Take&& take) {
    std::unique_lock lock(world_->mutex);
    world_->check();
    auto id = rounds_++;
    auto& round = group_->rounds[id];
    round.parts.resize(static_cast<std::size_t>(size()));
    round.parts[static_cast<std::size_t>(rank_)] = std::move(mine);
    ++round.arrived;
    world_->notify();
    std::function<bool()> ready = [&] { return round.arrived == size(); };
    world_->block(lock, me(), fmt::format("{} {} of a group of {}", what, id, size()), ready);
    take(round);
    if (++round.left == size()) group_->rounds.erase(id);
  }

  std::shared_ptr<Group> group_;
  std::shared_ptr<World> world_;
  int rank_;
  bool owns_world_rank_;
  std::uint64_t rounds_ = 0;  // collectives this rank has entered on this group
  std::vector<std::shared_ptr<Pending>> requests_;  // [handle]; null: a completed send or a released slot
  std::vector<bool> used_;
  std::vector<std::string> what_;  // [handle] -> what a wait on it waits for
};

}  // namespace

std::vector<std::unique_ptr<Comm>> make_thread_comms(int size) {
  if (size < 1) throw Error(fmt::format("threaded comm: {} ranks; at least 1 needed", size), Error::Kind::Internal);
  auto world = std::make_shared<Group>();
  world->world = std::make_shared<World>(size);
  for (int r = 0; r < size; ++r) world->members.push_back(r);
  std::vector<std::unique_ptr<Comm>> out;
  for (int r = 0; r < size; ++r) out.push_back(std::make_unique<ThreadComm>(world, r, true));
  return out;
}

void run_on_threads(int size, const std::function<void(Comm&)>& body) {
  auto comms = make_thread_comms(size);
  std::mutex mutex;
  std::exception_ptr first;
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      auto comm = std::move(comms[static_cast<std::size_t>(r)]);
      try {
        body(*comm);
      } catch (...) {
        auto failure = std::current_exception();
        {
          std::lock_guard lock(mutex);
          if (!first) first = failure;
        }
        std::string message = "unknown failure";
        int code = 1;
        try {
          std::rethrow_exception(failure);
        } catch (const Error& e) {
          message = e.what();
          code = e.exit_code();
        } catch (const std::exception& e) {
          message = e.what();
        } catch (...) {
        }
        try {
          comm->abort(message, code);  // throws, having stopped the other ranks
        } catch (const Error&) {
        }
      }
      comm.reset();  // this rank has finished
    });
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace pipesim
