// Two halves taking turns (see pair_runner.hpp).
#include "runtime/pair_runner.hpp"

#include "common/error.hpp"

namespace pipesim {

namespace {

// What a half throws at a pause once the other has failed; run() rethrows the other's error instead.
struct Cancelled : Error {
  Cancelled() : Error("stopped: the other half of its overlapped pair failed", Error::Kind::Internal) {}
};

// How a half ended: its error, if any, and whether that error is a cancellation.
struct Outcome {
  std::exception_ptr error;
  bool cancelled = false;
};

Outcome run_half(const std::function<void()>& half) {
  try {
    half();
  } catch (const Cancelled&) {
    return {std::current_exception(), true};
  } catch (...) {
    return {std::current_exception(), false};
  }
  return {};
}

}  // namespace

PairRunner::PairRunner(std::function<void()> on_helper_start, std::function<void()> on_helper_stop)
    : helper_([this, start = std::move(on_helper_start), stop = std::move(on_helper_stop)] { helper_loop(start, stop); }) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return started_; });
  if (!start_error_) return;
  stop_ = true;
  lock.unlock();
  changed_.notify_all();
  helper_.join();
  std::rethrow_exception(start_error_);
}

PairRunner::~PairRunner() {
  if (!helper_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  helper_.join();
}

void PairRunner::finish(int half, std::exception_ptr error, bool cancelled, std::unique_lock<std::mutex>& lock) {
  (void)lock;
  done_[half] = true;
  error_[half] = error;
  cancelled_[half] = cancelled;
  turn_ = 1 - half;
  changed_.notify_all();
}

void PairRunner::helper_loop(const std::function<void()>& on_start, const std::function<void()>& on_stop) {
  std::exception_ptr start_error;
  if (on_start) {
    try {
      on_start();
    } catch (...) {
      start_error = std::current_exception();
    }
  }
  std::unique_lock lock(mutex_);
  helper_thread_ = std::this_thread::get_id();
  start_error_ = start_error;
  started_ = true;
  changed_.notify_all();
  for (;;) {
    changed_.wait(lock, [&] { return stop_ || (work_ && turn_ == 1); });
    if (stop_) break;
    work_ = false;
    Outcome outcome{std::make_exception_ptr(Cancelled()), true};
    if (!error_[0]) {  // else the first half failed before its first pause: the second does not start
      lock.unlock();
      outcome = run_half(*second_);
      lock.lock();
    }
    finish(1, outcome.error, outcome.cancelled, lock);
  }
  lock.unlock();
  if (on_stop && !start_error) {
    try {
      on_stop();
    } catch (...) {  // a thread ending has no one to tell; the device's records of it are dropped anyway
    }
  }
}

void PairRunner::run(const std::function<void()>& first, const std::function<void()>& second) {
  std::unique_lock lock(mutex_);
  running_ = true;
  work_ = true;
  second_ = &second;
  turn_ = 0;
  for (int h : {0, 1}) {
    done_[h] = cancelled_[h] = false;
    error_[h] = nullptr;
  }
  first_thread_ = std::this_thread::get_id();
  lock.unlock();
  auto outcome = run_half(first);
  lock.lock();
  finish(0, outcome.error, outcome.cancelled, lock);
  changed_.wait(lock, [&] { return done_[1]; });
  running_ = false;
  second_ = nullptr;
  // The error that caused the other's cancellation, not the cancellation.
  for (int h : {0, 1})
    if (error_[h] && !cancelled_[h]) std::rethrow_exception(error_[h]);
  for (int h : {0, 1})
    if (error_[h]) std::rethrow_exception(error_[h]);
}

void PairRunner::pause() {
  std::unique_lock lock(mutex_);
  if (!running_) return;
  const auto self = std::this_thread::get_id();
  const int me = self == first_thread_ ? 0 : self == helper_thread_ ? 1 : -1;
  if (me < 0 || turn_ != me) return;  // not a half of the running pair
  const int other = 1 - me;
  if (!done_[other]) {
    turn_ = other;
    changed_.notify_all();
    changed_.wait(lock, [&] { return turn_ == me; });
  }
  if (error_[other]) throw Cancelled();
}

}  // namespace pipesim
