// NCCL point-to-point behind Comm (see comm_nccl.hpp).
#include "runtime/cuda/comm_nccl.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <thread>
#include <tuple>

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <nccl.h>

#include "common/error.hpp"
#include "kernels/cuda/check.hpp"
#include "runtime/comm_forwarding.hpp"
#include "runtime/cuda/staged_comm.hpp"

namespace pipesim {
namespace {

void check_nccl(ncclResult_t status, const char* what) {
  if (status != ncclSuccess && status != ncclInProgress)
    throw Error(fmt::format("NCCL: {}: {} ({})", what, ncclGetErrorString(status), static_cast<int>(status)),
                Error::Kind::Internal);
}

class NcclComm : public ForwardingComm {
 public:
  NcclComm(Comm& host, const std::vector<NcclChannel>& channels, std::function<int(int)> channel_of, double timeout_s)
      : ForwardingComm(host), channel_of_(std::move(channel_of)), timeout_s_(timeout_s) {
    int me = host.rank();
    for (auto [from, to, channel] : channels) {
      if (from == to || from < 0 || to < 0 || from >= host.size() || to >= host.size())
        throw Error(fmt::format("NCCL: channel {} -> {} is not between two ranks of {}", from, to, host.size()),
                    Error::Kind::Internal);
      if (me != from && me != to) continue;
      if (links_.count({from, to, channel})) continue;
      ncclUniqueId id{};
      int tag = static_cast<int>(std::min<std::int64_t>(host.max_tag(), 1 << 20)) - 1;
      if (me == from) {  // the sender makes the link's id and hands it to the receiver
        check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
        host.wait(host.isend(to, tag, &id, sizeof(id)));
      } else {
        host.wait(host.irecv(from, tag, &id, sizeof(id)));
      }
      Link link;
      cuda::check(cudaStreamCreateWithFlags(&link.stream, cudaStreamNonBlocking), "cudaStreamCreate (communication)");
      check_nccl(ncclCommInitRank(&link.comm, 2, id, me == from ? 0 : 1), "ncclCommInitRank");
      links_[{from, to, channel}] = link;
    }
  }
  ~NcclComm() override {
    for (auto& [r, p] : pending_) cudaEventDestroy(p.done);
    for (auto& [key, link] : links_) {
      if (link.comm) ncclCommDestroy(link.comm);
      cudaStreamDestroy(link.stream);
    }
  }


  Request isend(int peer, int tag, const void* data, std::size_t bytes) override {
    if (!cuda::is_device_pointer(data)) return track_host(inner().isend(peer, tag, data, bytes));
    auto& link = link_to(rank(), peer, tag);
    check_nccl(ncclSend(data, bytes, ncclChar, 1, link.comm, link.stream), "ncclSend");
    return track_device(link);
  }
  Request irecv(int peer, int tag, void* data, std::size_t bytes) override {
    if (!cuda::is_device_pointer(data)) return track_host(inner().irecv(peer, tag, data, bytes));
    auto& link = link_to(peer, rank(), tag);
    check_nccl(ncclRecv(data, bytes, ncclChar, 0, link.comm, link.stream), "ncclRecv");
    return track_device(link);
  }
  bool test(Request r) override {
    auto& p = pending_.at(r);
    bool done = p.host >= 0 ? inner().test(p.host) : query(p);
    if (done) forget(r);
    return done;
  }
  void wait(Request r) override {
    auto& p = pending_.at(r);
    if (p.host >= 0) {
      inner().wait(p.host);
    } else {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s_);
      while (!query(p)) {
        if (std::chrono::steady_clock::now() > deadline) {
          abort_links();
          throw Error(fmt::format("NCCL: rank {}: a transfer did not complete within {} s; communicator aborted", rank(),
                                  timeout_s_),
                      Error::Kind::Internal);
        }
        std::this_thread::yield();
      }
    }
    forget(r);
  }
  void set_timeout(double seconds) override {
    inner().set_timeout(seconds);
    if (seconds > 0) timeout_s_ = seconds;
  }
  // Sub-groups (the EP group) trade host data only: their GPU buffers are staged through host memory.
  std::unique_ptr<Comm> split(int color, int key) override {
    auto group = inner().split(color, key);
    auto staged = make_staged_comm(*group);
    owned_.push_back(std::move(group));
    return staged;
  }
  [[noreturn]] void abort(const std::string& message, int code) override {
    abort_links();
    ForwardingComm::abort(message, code);
  }

 private:
  struct Pending {
    Request host = -1;           // a host-memory transfer's request on the host Comm
    cudaEvent_t done = nullptr;  // a GPU transfer's completion on its link's stream
    ncclComm_t comm = nullptr;   // that link, for its asynchronous errors
  };
  struct Link {
    ncclComm_t comm = nullptr;  // rank 0 the sender, rank 1 the receiver
    cudaStream_t stream = nullptr;
  };
  Link& link_to(int from, int to, int tag) {
    int channel = channel_of_(tag);
    auto it = links_.find({from, to, channel});
    if (it == links_.end())
      throw Error(fmt::format("NCCL: no channel {} -> {} ({}) was declared", from, to, channel), Error::Kind::Internal);
    return it->second;
  }
  Request track_host(Request inner) {
    pending_[next_] = {inner, nullptr, nullptr};
    return next_++;
  }
  Request track_device(const Link& link) {
    cudaEvent_t done = nullptr;
    cuda::check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    cuda::check(cudaEventRecord(done, link.stream), "cudaEventRecord");
    pending_[next_] = {-1, done, link.comm};
    return next_++;
  }
  void abort_links() {
    for (auto& [key, link] : links_)
      if (link.comm) {
        ncclCommAbort(link.comm);
        link.comm = nullptr;
      }
  }
  // Complete, not yet, or an error (a CUDA failure, or NCCL's asynchronous error) that ends the run.
  bool query(const Pending& p) {
    auto status = cudaEventQuery(p.done);
    if (status == cudaSuccess) return true;
    if (status != cudaErrorNotReady) cuda::check(status, "a NCCL transfer");
    ncclResult_t async = ncclSuccess;
    if (p.comm) check_nccl(ncclCommGetAsyncError(p.comm, &async), "ncclCommGetAsyncError");
    check_nccl(async, "asynchronous error");
    return false;
  }
  void forget(Request r) {
    auto node = pending_.extract(r);
    if (node.mapped().done) cudaEventDestroy(node.mapped().done);
  }

  std::function<int(int)> channel_of_;
  double timeout_s_;
  std::map<std::tuple<int, int, int>, Link> links_;  // (sender, receiver, channel) -> communicator, this side's stream
  std::map<Request, Pending> pending_;
  Request next_ = 0;
  std::vector<std::unique_ptr<Comm>> owned_;  // the host sub-groups behind split()'s staged Comms
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(Comm& host, const std::vector<NcclChannel>& channels,
                                     std::function<int(int)> channel_of, double timeout_s) {
  return std::make_unique<NcclComm>(host, channels, std::move(channel_of), timeout_s);
}

}  // namespace pipesim
