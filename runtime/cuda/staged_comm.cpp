// Staging GPU buffers through pinned host memory (see staged_comm.hpp).
#include "runtime/cuda/staged_comm.hpp"

#include <exception>
#include <map>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/cuda/check.hpp"

namespace pipesim {
namespace {

bool on_device(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice;
}

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

class StagedComm : public Comm {
 public:
  explicit StagedComm(Comm& inner) : inner_(inner) {}
  StagedComm(std::unique_ptr<Comm> owned) : owned_(std::move(owned)), inner_(*owned_) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }

  Request isend(int peer, int tag, const void* data, std::size_t bytes) override {
    if (!on_device(data)) return track(inner_.isend(peer, tag, data, bytes), {});
    auto host = std::make_unique<Pinned>(bytes);
    cuda::check(cudaMemcpy(host->data(), data, bytes, cudaMemcpyDeviceToHost), "staging a send");
    auto inner = inner_.isend(peer, tag, host->data(), bytes);
    return track(inner, {std::move(host), nullptr});
  }
  Request irecv(int peer, int tag, void* data, std::size_t bytes) override {
    if (!on_device(data)) return track(inner_.irecv(peer, tag, data, bytes), {});
    auto host = std::make_unique<Pinned>(bytes);
    auto inner = inner_.irecv(peer, tag, host->data(), bytes);
    return track(inner, {std::move(host), data});
  }
  bool test(Request r) override {
    auto& p = pending_.at(r);
    if (!inner_.test(p.inner)) return false;
    finish(r);
    return true;
  }
  void wait(Request r) override {
    inner_.wait(pending_.at(r).inner);
    finish(r);
  }
  void progress() override { inner_.progress(); }
  void set_timeout(double seconds) override { inner_.set_timeout(seconds); }
  void all_reduce_sum(double* data, std::size_t count) override { inner_.all_reduce_sum(data, count); }
  void broadcast(void* data, std::size_t bytes, int root) override { inner_.broadcast(data, bytes, root); }
  std::vector<std::string> gather(const std::string& mine) override { return inner_.gather(mine); }
  void barrier() override { inner_.barrier(); }
  std::int64_t max_tag() const override { return inner_.max_tag(); }
  std::vector<std::vector<char>> all_to_all_v(const std::vector<std::vector<char>>& send) override {
    return inner_.all_to_all_v(send);
  }
  std::unique_ptr<Comm> split(int color, int key) override {
    return std::make_unique<StagedComm>(inner_.split(color, key));
  }
  [[noreturn]] void abort(const std::string& message, int code) override {
    inner_.abort(message, code);
    std::terminate();  // not reached: the inner abort does not return (GCC cannot see it through the virtual call)
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
  // A completed transfer: a staged receive is copied to the GPU before anyone reads it.
  void finish(Request r) {
    auto node = pending_.extract(r);
    auto& p = node.mapped();
    if (p.device)
      cuda::check(cudaMemcpy(p.device, p.host->data(), p.host->bytes(), cudaMemcpyHostToDevice), "unstaging a receive");
  }

  std::unique_ptr<Comm> owned_;
  Comm& inner_;
  std::map<Request, Pending> pending_;
  Request next_ = 0;
};

}  // namespace

std::unique_ptr<Comm> make_staged_comm(Comm& inner) { return std::make_unique<StagedComm>(inner); }

}  // namespace pipesim
