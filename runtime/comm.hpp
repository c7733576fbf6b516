// Communication behind one interface, shaped like NCCL's (non-blocking tagged point-to-point handles that
// complete later, collectives over the world), so the CUDA + NCCL backend slots in without touching the
// executor. MPI implements it (comm_mpi.cpp: one process per rank), and so do threads of one process
// (comm_threads.hpp: in-process runs and tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pipesim {

class Comm {
 public:
  using Request = int;  // a handle from isend / irecv
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Request isend(int peer, int tag, const void* data, std::size_t bytes) = 0;
  virtual Request irecv(int peer, int tag, void* data, std::size_t bytes) = 0;
  virtual bool test(Request request) = 0;   // progresses communication; true once complete
  virtual void wait(Request request) = 0;
  virtual void progress() = 0;              // lets pending transfers move while the caller computes
  virtual void all_reduce_sum(double* data, std::size_t count) = 0;
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  // Rank 0 receives every rank's bytes, in rank order; others get an empty result.
  virtual std::vector<std::string> gather(const std::string& mine) = 0;
  virtual void barrier() = 0;
  virtual std::int64_t max_tag() const = 0;
  // From now on a blocking wait (a transfer, a collective) that lasts `seconds` fails with Error instead of
  // waiting on (a stopped or lost peer); 0 waits forever. Backends that cannot hang (threads, which detect a
  // deadlock) may ignore it.
  virtual void set_timeout(double seconds) { (void)seconds; }
  // Whether another thread may call this Comm while the thread that made it waits, one at a time; an
  // overlapped pair's second thread does (runtime/pair_runner.hpp). MPI: when make_mpi_comm(true) got
  // MPI_THREAD_MULTIPLE.
  virtual bool other_threads() const { return false; }
  // Every rank sends send[p] to rank p and receives, in rank order, what each rank sent it (sizes may differ).
  virtual std::vector<std::vector<char>> all_to_all_v(const std::vector<std::vector<char>>& send) = 0;
  // The ranks with the same color, ordered by key (a sub-group such as an expert-parallel group).
  virtual std::unique_ptr<Comm> split(int color, int key) = 0;
  // Stops every rank with `message` (code: an exit code, 2 for bad input): MPI ends every process, the
  // threaded Comm throws Error in every rank's thread.
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
};

// MPI_COMM_WORLD; initialises MPI on construction, finalises on destruction. Open MPI lives in a module
// beside the program (pipesim-mpi.so), loaded here the first time: linked into every program, its
// libraries' start-up cost each command about 1.2 ms (docs/performance.md §5). Throws Error when the module
// is missing or cannot be loaded.
// `threads`: ask for MPI_THREAD_MULTIPLE (Comm::other_threads), which `run --overlap-pairs` needs.
std::unique_ptr<Comm> make_mpi_comm(bool threads = false);

}  // namespace pipesim
