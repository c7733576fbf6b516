// The MPI implementation of Comm. Requests live in a table indexed by handle; completed slots are reused.
// Built as the module pipesim-mpi.so, loaded only by commands that start MPI (comm_mpi_loader.cpp).
#include <mpi.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "common/error.hpp"
#include "runtime/comm.hpp"

namespace pipesim {
namespace {

class MpiComm : public Comm {
 public:
  // The world (initialises MPI, finalises it at the end), or a sub-communicator of it.
  // `threads`: the world asks for MPI_THREAD_MULTIPLE (an overlapped pair's second thread makes MPI calls
  // while the first waits; SERIALIZED would do by the standard, but Open MPI's UCX layer before 4.1.7 /
  // 5.0.4 keeps a single-thread worker unless MULTIPLE is asked for).
  explicit MpiComm(MPI_Comm comm = MPI_COMM_NULL, bool threads = false) : comm_(comm), world_(comm == MPI_COMM_NULL) {
    if (world_) {
      int initialised = 0;
      MPI_Initialized(&initialised);
      int provided = MPI_THREAD_SINGLE;
      if (!initialised) MPI_Init_thread(nullptr, nullptr, threads ? MPI_THREAD_MULTIPLE : MPI_THREAD_SINGLE, &provided);
      else MPI_Query_thread(&provided);
      threads_ = provided >= MPI_THREAD_MULTIPLE;
      comm_ = MPI_COMM_WORLD;
    }
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    void* value = nullptr;
    int found = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &value, &found);
    max_tag_ = found ? *static_cast<int*>(value) : 32767;
  }
  ~MpiComm() override {
    if (!world_) {
      MPI_Comm_free(&comm_);
      return;
    }
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Finalize();
  }
  std::vector<std::vector<char>> all_to_all_v(const std::vector<std::vector<char>>& send) override {
    if (static_cast<int>(send.size()) != size_) throw Error("all-to-all: one buffer per rank expected", Error::Kind::Internal);
    std::vector<int> send_counts(static_cast<std::size_t>(size_)), recv_counts(static_cast<std::size_t>(size_)),
        send_offsets(static_cast<std::size_t>(size_)), recv_offsets(static_cast<std::size_t>(size_));
    std::vector<char> out;
    for (int p = 0; p < size_; ++p) {
      send_counts[static_cast<std::size_t>(p)] = static_cast<int>(send[static_cast<std::size_t>(p)].size());
      send_offsets[static_cast<std::size_t>(p)] = static_cast<int>(out.size());
      out.insert(out.end(), send[static_cast<std::size_t>(p)].begin(), send[static_cast<std::size_t>(p)].end());
    }
    MPI_Request counts = MPI_REQUEST_NULL;
    check(MPI_Ialltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, comm_, &counts), "all-to-all counts");
    finish(counts, "the all-to-all's counts");
    int total = 0;
    for (int p = 0; p < size_; ++p) {
      recv_offsets[static_cast<std::size_t>(p)] = total;
      total += recv_counts[static_cast<std::size_t>(p)];
    }
    std::vector<char> in(static_cast<std::size_t>(total));
    MPI_Request data = MPI_REQUEST_NULL;
    check(MPI_Ialltoallv(out.data(), send_counts.data(), send_offsets.data(), MPI_BYTE, in.data(), recv_counts.data(),
                         recv_offsets.data(), MPI_BYTE, comm_, &data),
          "all-to-all");
    finish(data, "an all-to-all");
    std::vector<std::vector<char>> result(static_cast<std::size_t>(size_));
    for (int p = 0; p < size_; ++p)
      result[static_cast<std::size_t>(p)].assign(in.begin() + recv_offsets[static_cast<std::size_t>(p)],
                                                 in.begin() + recv_offsets[static_cast<std::size_t>(p)] + recv_counts[static_cast<std::size_t>(p)]);
    return result;
  }
  std::unique_ptr<Comm> split(int color, int key) override {
    MPI_Comm sub = MPI_COMM_NULL;
    check(MPI_Comm_split(comm_, color, key, &sub), "split");
    auto out = std::make_unique<MpiComm>(sub);
    out->set_timeout(timeout_s_);
    out->threads_ = threads_;
    return out;
  }
  int rank() const override { return rank_; }
  bool other_threads() const override { return threads_; }
  int size() const override { return size_; }
  std::int64_t max_tag() const override { return max_tag_; }

  Request isend(int peer, int tag, const void* data, std::size_t bytes) override {
    auto slot = free_slot();
    check(MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, peer, tag, comm_, &requests_[slot]), "isend");
    return static_cast<Request>(slot);
  }
  Request irecv(int peer, int tag, void* data, std::size_t bytes) override {
    auto slot = free_slot();
    check(MPI_Irecv(data, static_cast<int>(bytes), MPI_BYTE, peer, tag, comm_, &requests_[slot]), "irecv");
    return static_cast<Request>(slot);
  }
  bool test(Request r) override {
    int done = 0;
    check(MPI_Test(&requests_[static_cast<std::size_t>(r)], &done, MPI_STATUS_IGNORE), "test");
    return done != 0;
  }
  void wait(Request r) override { finish(requests_[static_cast<std::size_t>(r)], "a transfer"); }
  void set_timeout(double seconds) override { timeout_s_ = seconds; }
  void progress() override {
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, MPI_STATUS_IGNORE);
  }
  void all_reduce_sum(double* data, std::size_t count) override {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, comm_, &r), "all-reduce");
    finish(r, "an all-reduce");
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &r), "broadcast");
    finish(r, fmt::format("a broadcast from rank {}", root).c_str());
  }
  std::vector<std::string> gather(const std::string& mine) override {
    int length = static_cast<int>(mine.size());
    std::vector<int> lengths(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Igather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, comm_, &request), "gather");
    finish(request, "a gather");
    std::string all;
    if (rank_ == 0) {
      int total = 0;
      for (int r = 0; r < size_; ++r) {
        offsets[static_cast<std::size_t>(r)] = total;
        total += lengths[static_cast<std::size_t>(r)];
      }
      all.resize(static_cast<std::size_t>(total));
    }
    check(MPI_Igatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, 0, comm_, &request),
          "gather");
    finish(request, "a gather");
    std::vector<std::string> out;
    if (rank_ == 0)
      for (int r = 0; r < size_; ++r)
        out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                                 static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)])));
    return out;
  }
  void barrier() override {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Ibarrier(comm_, &r), "barrier");
    finish(r, "a barrier");
  }
  [[noreturn]] void abort(const std::string& message, int code) override {
    fmt::print(stderr, "pipesim: rank {}: {}\n", rank_, message);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  // Completes `request`, or after timeout_s_ fails naming `what` (the peer stopped, hangs or is gone).
  void finish(MPI_Request& request, const char* what) {
    if (timeout_s_ <= 0) {
      check(MPI_Wait(&request, MPI_STATUS_IGNORE), what);
      return;
    }
    // Spin for the first 2 ms (a transfer's latency must not grow by a sleep), then poll every 100 us.
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + std::chrono::duration<double>(timeout_s_);
    for (int done = 0;;) {
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      auto now = std::chrono::steady_clock::now();
      if (now > deadline)
        throw Error(fmt::format("waited {:g} s for {} (--timeout): a rank is stopped, stuck or gone", timeout_s_, what),
                    Error::Kind::Internal);
      if (now - start < std::chrono::milliseconds(2))
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  std::size_t free_slot() {
    for (std::size_t i = 0; i < requests_.size(); ++i)
      if (requests_[i] == MPI_REQUEST_NULL) return i;
    requests_.push_back(MPI_REQUEST_NULL);
    return requests_.size() - 1;
  }
  void check(int code, const char* what) const {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Error(fmt::format("MPI {} failed on rank {}: {}", what, rank_, std::string(text, static_cast<std::size_t>(length))),
                Error::Kind::Internal);
  }
  MPI_Comm comm_;
  bool world_;
  int rank_ = 0, size_ = 1;
  std::int64_t max_tag_ = 32767;
  std::vector<MPI_Request> requests_;
  double timeout_s_ = 0;
  bool threads_ = false;  // MPI gave MPI_THREAD_MULTIPLE (the world's level, copied into sub-communicators)
};

}  // namespace

}  // namespace pipesim

// The module's one entry point (comm_mpi_loader.cpp looks it up by this name).
extern "C" pipesim::Comm* pipesim_make_mpi_comm(bool threads) { return new pipesim::MpiComm(MPI_COMM_NULL, threads); }
