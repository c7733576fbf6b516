// Comm for N ranks as threads of one process: the executor and the runtime's measurements run in-process,
// without mpirun (tests, a laptop). Sends are eager (the data is copied at isend, which completes at once);
// receives and collectives block their thread. Messages between two ranks with one tag arrive in the order
// they were sent, as MPI promises. abort() throws Error in every rank's thread instead of ending the
// process, and a wait that no rank can ever satisfy (every unfinished rank blocked) is reported as a
// deadlock in the same way, so a broken schedule fails a test instead of hanging it.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "runtime/comm.hpp"

namespace pipesim {

// `size` ranks of one world; element r is rank r's Comm, to be used by one thread only. A rank counts as
// finished (for deadlock detection) once its Comm is destroyed.
std::vector<std::unique_ptr<Comm>> make_thread_comms(int size);

// Runs body(comm) on `size` threads, one per rank, and returns when all have ended. The first failure
// aborts the other ranks (their pending and later communication throws) and is rethrown here.
void run_on_threads(int size, const std::function<void(Comm&)>& body);

}  // namespace pipesim
