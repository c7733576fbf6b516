// The two halves of an overlapped F&B pair (DualPipe) on two threads taking turns: the first half on the
// calling thread until it pauses or ends, then the second on a helper thread until it pauses or ends, and
// so on. A MoE layer pauses before each expert all-to-all and each wait for its GPU stream (executor.cpp,
// device_moe.hpp; the CPU layer at the same points). One half runs at a time, so the two
// share the rank's state as one thread would, and their all-to-alls reach the EP group in the same order on
// every rank; yet while a half waits (for its GPU stream, in an all-to-all) the kernels the other half has
// launched run on the GPU: the overlap of one chunk's communication with the other's compute that DualPipe
// pairs them for. The helper thread lives as long as the runner.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace pipesim {

class PairRunner {
 public:
  // `on_helper_start` runs first on the helper thread (a device makes its context current there), before the
  // constructor returns: what it throws, the constructor throws. `on_helper_stop` runs last on it.
  explicit PairRunner(std::function<void()> on_helper_start = {}, std::function<void()> on_helper_stop = {});
  ~PairRunner();
  PairRunner(const PairRunner&) = delete;
  PairRunner& operator=(const PairRunner&) = delete;

  // Runs both halves taking turns; returns when both have ended. When a half throws, the other stops at its
  // next pause (or does not start) and the first error is rethrown here.
  void run(const std::function<void()>& first, const std::function<void()>& second);
  // Called by the running half: lets the other half run until it pauses or ends. Returns at once outside
  // run(), on a thread that is not a half's, or once the other half has ended; throws Error when the other
  // half failed.
  void pause();

 private:
  void helper_loop(const std::function<void()>& on_start, const std::function<void()>& on_stop);
  // Records the end of `half` (0 or 1) and its error, and hands the turn to the other; under the lock.
  void finish(int half, std::exception_ptr error, bool cancelled, std::unique_lock<std::mutex>& lock);

  std::mutex mutex_;
  std::condition_variable changed_;
  int turn_ = 0;                      // the half that may run
  bool running_ = false;              // inside run()
  bool work_ = false, stop_ = false;  // the helper has a second half to run; the runner is going
  bool started_ = false;              // on_helper_start has run
  std::exception_ptr start_error_;
  bool done_[2] = {false, false};
  bool cancelled_[2] = {false, false};  // stopped because the other half failed
  std::exception_ptr error_[2];
  const std::function<void()>* second_ = nullptr;
  std::thread::id first_thread_, helper_thread_;
  std::thread helper_;
};

}  // namespace pipesim
