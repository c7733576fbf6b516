// Comm over NCCL for GPU buffers, bootstrapped over a host Comm (MPI). Every channel the caller declares
// (sender, receiver, channel number) gets a two-rank NCCL communicator and, on each side, a stream of its
// own, so a send waiting for its receiver never holds up another transfer (one stream for both directions
// of a pair deadlocks when both ranks send first). Channels are created in the order given, the same on
// every rank, so creation cannot deadlock either. A transfer's channel is channel_of(its tag). GPU transfers
// complete with a CUDA event; host memory and everything that is not point-to-point (host collectives,
// gather, barrier, split) go through the host Comm. NCCL matches a channel's transfers in issue order, not
// by tag: callers check that each channel's send order equals its receive order (runtime/p2p_order.hpp)
// before choosing NCCL. A wait that does not complete within `timeout_s`, or an asynchronous NCCL error,
// aborts the communicators and throws, so no rank hangs.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "runtime/comm.hpp"

namespace pipesim {

struct NcclChannel {
  int from = 0, to = 0;  // world ranks
  int channel = 0;
};

// `host` must outlive the result. Every rank of `host` calls this together, after choosing its GPU, with the
// same `channels`.
std::unique_ptr<Comm> make_nccl_comm(Comm& host, const std::vector<NcclChannel>& channels,
                                     std::function<int(int tag)> channel_of, double timeout_s = 300);

}  // namespace pipesim
