// A Comm that passes every call to another: the base of decorators that change a few calls (staging GPU
// buffers through host memory, NCCL for GPU point-to-point) and keep the rest.
#pragma once

#include <exception>

#include "runtime/comm.hpp"

namespace pipesim {

class ForwardingComm : public Comm {
 public:
  explicit ForwardingComm(Comm& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  Request isend(int peer, int tag, const void* data, std::size_t bytes) override { return inner_.isend(peer, tag, data, bytes); }
  Request irecv(int peer, int tag, void* data, std::size_t bytes) override { return inner_.irecv(peer, tag, data, bytes); }
  bool test(Request request) override { return inner_.test(request); }
  void wait(Request request) override { inner_.wait(request); }
  void progress() override { inner_.progress(); }
  void all_reduce_sum(double* data, std::size_t count) override { inner_.all_reduce_sum(data, count); }
  void broadcast(void* data, std::size_t bytes, int root) override { inner_.broadcast(data, bytes, root); }
  std::vector<std::string> gather(const std::string& mine) override { return inner_.gather(mine); }
  void barrier() override { inner_.barrier(); }
  std::int64_t max_tag() const override { return inner_.max_tag(); }
  void set_timeout(double seconds) override { inner_.set_timeout(seconds); }
  bool other_threads() const override { return inner_.other_threads(); }
  std::vector<std::vector<char>> all_to_all_v(const std::vector<std::vector<char>>& send) override {
    return inner_.all_to_all_v(send);
  }
  std::unique_ptr<Comm> split(int color, int key) override { return inner_.split(color, key); }
  [[noreturn]] void abort(const std::string& message, int code) override {
    inner_.abort(message, code);
    std::terminate();  // not reached: the inner abort does not return (GCC cannot see it through the virtual call)
  }

 protected:
  Comm& inner() const { return inner_; }

 private:
  Comm& inner_;
};

}  // namespace pipesim
