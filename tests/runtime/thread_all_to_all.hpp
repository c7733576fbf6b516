// An all-to-all among threads of one test: each rank's thread deposits its buffers, waits for the others,
// takes what was sent to it. Ranks must call it the same number of times, in lockstep.
#pragma once

#include <atomic>
#include <barrier>
#include <cstddef>
#include <vector>

#include "runtime/workload.hpp"

namespace pipesim {

template <class T = double>
class ThreadAllToAll {
 public:
  explicit ThreadAllToAll(int ranks) : mail_(std::size_t(ranks)), barrier_(ranks) {}
  AllToAll<T> rank(int r) {
    return [this, r](std::vector<std::vector<T>> out) {
      mail_[std::size_t(r)] = std::move(out);
      barrier_.arrive_and_wait();
      std::vector<std::vector<T>> in(mail_.size());
      for (std::size_t from = 0; from < mail_.size(); ++from) {
        if (std::size_t(r) < mail_[from].size()) in[from] = std::move(mail_[from][std::size_t(r)]);
        if (from != std::size_t(r)) crossed += in[from].size();
      }
      barrier_.arrive_and_wait();  // nobody deposits the next round before everyone has taken this one
      return in;
    };
  }
  void leave() { barrier_.arrive_and_drop(); }  // a rank that failed, so the others do not wait forever
  std::atomic<std::size_t> crossed = 0;          // elements that went to another rank

 private:
  std::vector<std::vector<std::vector<T>>> mail_;  // [from][to]
  std::barrier<> barrier_;
};

}  // namespace pipesim
