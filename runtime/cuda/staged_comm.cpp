// Staging GPU buffers through pinned host memory (see staged_comm.hpp).
#include "runtime/cuda/staged_comm.hpp"

#include <map>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/cuda/check.hpp"
#include "runtime/comm_forwarding.hpp"

namespace pipesim {
namespace {

// Page-locked host bytes, so the copies to and from the GPU run at full speed.
class Pinned {
 public:
  explicit Pinned(std::size_t bytes) : bytes_(bytes) {
    if (bytes) cuda::check(cudaMallocHost(&data_, bytes), "cudaMallocHost");
  }
  ~Pinned() {
    if (data_) cudaFreeHost(data_);
  }
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

class StagedComm : public ForwardingComm {
 public:
  explicit StagedComm(Comm& inner) : ForwardingComm(inner) {}
  explicit StagedComm(std::unique_ptr<Comm> owned) : ForwardingComm(*owned), owned_(std::move(owned)) {}

  Request isend(int peer, int tag, const void* data, std::size_t bytes) override {
    if (!cuda::is_device_pointer(data)) return track(inner().isend(peer, tag, data, bytes), {});
    auto host = take(bytes);
    cuda::check(cudaMemcpy(host->data(), data, bytes, cudaMemcpyDeviceToHost), "staging a send");
    auto request = inner().isend(peer, tag, host->data(), bytes);
    return track(request, {std::move(host), nullptr});
  }
  Request irecv(int peer, int tag, void* data, std::size_t bytes) override {
    if (!cuda::is_device_pointer(data)) return track(inner().irecv(peer, tag, data, bytes), {});
    auto host = take(bytes);
    auto request = inner().irecv(peer, tag, host->data(), bytes);
    return track(request, {std::move(host), data});
  }
  bool test(Request r) override {
    auto& p = pending_.at(r);
    if (!inner().test(p.inner)) return false;
    finish(r);
    return true;
  }
  void wait(Request r) override {
    inner().wait(pending_.at(r).inner);
    finish(r);
  }
  std::unique_ptr<Comm> split(int color, int key) override {
    return std::make_unique<StagedComm>(inner().split(color, key));
  }

 private:
  struct Pending {
    std::unique_ptr<Pinned> host;  // the staging bytes, kept until the transfer completes
    void* device = nullptr;        // a receive's destination on the GPU
    Request inner = -1;
  };
  Request track(Request inner, Pending p) {
    p.inner = inner;
    Request mine = next_++;
    pending_[mine] = std::move(p);
    return mine;
  }
  // A completed transfer: a staged receive is copied to the GPU before anyone reads it; the staging bytes
  // go back to the pool.
  void finish(Request r) {
    auto node = pending_.extract(r);
    auto& p = node.mapped();
    if (p.device)
      cuda::check(cudaMemcpy(p.device, p.host->data(), p.host->bytes(), cudaMemcpyHostToDevice), "unstaging a receive");
    if (p.host) spare_.emplace(p.host->bytes(), std::move(p.host));
  }
  // Pinned bytes from the pool, kept for the next transfer of that size: cudaMallocHost costs about a
  // millisecond per few MB, and cudaFreeHost waits for the whole device (every rank sharing it), which
  // would put both into every transfer.
  std::unique_ptr<Pinned> take(std::size_t bytes) {
    auto it = spare_.find(bytes);
    if (it == spare_.end()) return std::make_unique<Pinned>(bytes);
    auto host = std::move(it->second);
    spare_.erase(it);
    return host;
  }

  std::unique_ptr<Comm> owned_;  // a split's sub-group, which this Comm owns
  std::map<Request, Pending> pending_;
  std::multimap<std::size_t, std::unique_ptr<Pinned>> spare_;  // by size
  Request next_ = 0;
};

}  // namespace

std::unique_ptr<Comm> make_staged_comm(Comm& inner) { return std::make_unique<StagedComm>(inner); }

}  // namespace pipesim
