// Point-to-point on GPU memory over a Comm that only reads host memory (Debian's MPI is not CUDA-aware, and
// ranks sharing one GPU cannot use NCCL): a send copies the device bytes into pinned host memory and sends
// that; a receive lands in pinned host memory and is copied to the device when it completes. Host pointers
// pass straight through, and so does everything else (collectives on host data, split, abort).
#pragma once

#include <memory>

#include "runtime/comm.hpp"

namespace pipesim {

// Wraps `inner`, which must outlive the result.
std::unique_ptr<Comm> make_staged_comm(Comm& inner);

}  // namespace pipesim
