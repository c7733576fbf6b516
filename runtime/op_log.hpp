// The operators a stage runs, told to a recorder as they start and end: each with the work it does (GEMM
// FLOPs and smallest dimension, attention FLOPs, bytes of a memory-bound operator) and its pass, so that
// the kernels it launches can be priced against a hardware profile (`pipesim calibrate --hw-profile-out`,
// docs/gpu-runtime.md §10). The CPU device times each operator on the host; the CUDA device tags the
// kernels CUPTI records with the operator that launched them. The work formulas are the cost model's
// (docs/cost-model.md §2), so a profile fitted here prices the simulator's operators the same way.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "kernels/cpu/ops.hpp"
#include "traces/timeline.hpp"

namespace pipesim {

class OpLog {
 public:
  virtual ~OpLog() = default;
  // Operators may nest; a recorder keeps the outermost.
  virtual void begin(const char* name, const OpWork& work) = 0;
  virtual void end() = 0;
};

// begin() now, end() when it goes out of scope; nothing without a log.
class OpScope {
 public:
  OpScope(OpLog* log, const char* name, const OpWork& work) : log_(log) {
    if (log_) log_->begin(name, work);
  }
  ~OpScope() {
    if (log_) log_->end();
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  OpLog* log_;
};

// C = op(A)·op(B) with C [m x n] and k the inner dimension.
inline OpWork gemm_work(char pass, int m, int n, int k) {
  return {OpKind::Gemm, pass, 2.0 * m * n * k, 0, static_cast<double>(std::min({m, n, k}))};
}
// A memory-bound operator moving `bytes` (read and written).
inline OpWork memory_work(char pass, double bytes) { return {OpKind::Memory, pass, 0, bytes, 0}; }
// An exchange between ranks sending `bytes` to the others (the expert all-to-all).
inline OpWork comm_work(char pass, double bytes) { return {OpKind::Comm, pass, 0, bytes, 0}; }
// An RMSNorm over [rows x cols]. F reads x and the weight, writes y and rstd; I also reads dy and writes
// dx; W reads x, dy and rstd and updates the weight's gradient.
inline OpWork rmsnorm_work(char pass, int rows, int cols, double element_bytes) {
  double rc = double(rows) * cols, r = rows, c = cols;
  double elements = pass == 'F' ? 2 * rc + c + r : pass == 'I' ? 3 * rc + c + r : 2 * rc + r + 2 * c;
  return memory_work(pass, elements * element_bytes);
}
// An elementwise operator over `n` elements of each of `tensors` tensors it reads or writes (add: 3).
inline OpWork elementwise_work(char pass, double n, int tensors, double element_bytes) {
  return memory_work(pass, n * tensors * element_bytes);
}
// Causal attention over `s`: forward 2·tokens·keys·heads·2·head_dim with keys = (seq + 1) / 2 a query
// attends on average, backward twice that (docs/cost-model.md §2); bytes: q, k, v and the output (their
// gradients too backward).
inline OpWork attention_work(char pass, const kernels::AttentionShape& s, double element_bytes) {
  double tokens = s.rows(), keys = (s.seq + 1) / 2.0, width = s.width();
  double forward = 2 * tokens * keys * s.heads * 2.0 * s.head_dim;
  double bytes = 4 * tokens * width * element_bytes;
  return {OpKind::Attention, pass, pass == 'F' ? forward : 2 * forward, pass == 'F' ? bytes : 2 * bytes, 0};
}

// The CPU device's recorder: host times of the outermost operators, taken as KernelSpans (kHostStream, the
// operator's name) after each step.
class HostOpLog final : public OpLog {
 public:
  using Clock = std::chrono::steady_clock;
  void begin(const char* name, const OpWork& work) override {
    if (depth_++ > 0) return;
    open_ = {name, work, Clock::now(), {}};
  }
  void end() override {
    if (--depth_ > 0) return;
    open_.end = Clock::now();
    done_.push_back(open_);
  }
  // The operators ended since the last call, in ns since `origin`, numbered from 0.
  std::vector<KernelSpan> take(int rank, Clock::time_point origin) {
    std::vector<KernelSpan> out;
    out.reserve(done_.size());
    auto ns = [&](Clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(t - origin).count();
    };
    for (auto& r : done_)
      out.push_back({rank, kHostStream, r.name, ns(r.start), ns(r.end), 0, static_cast<std::int64_t>(out.size()), r.work});
    done_.clear();
    return out;
  }

 private:
  struct Record {
    const char* name;
    OpWork work;
    Clock::time_point start, end;
  };
  int depth_ = 0;
  Record open_{};
  std::vector<Record> done_;
};

}  // namespace pipesim
