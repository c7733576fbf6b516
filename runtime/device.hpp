// Devices behind one interface. A Device makes the compute of a pipeline stage (the layers of one chunk,
// with forward, backward-for-input and backward-for-weights apart); the executor only talks to StageCompute,
// so a CUDA device (cuBLAS GEMMs, streams, CUPTI timing) slots in beside the CPU one without touching it.
// Activations and gradients travel as Buffers in the device's own memory (runtime/buffer.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/buffer.hpp"
#include "traces/timeline.hpp"
#include "runtime/workload.hpp"

namespace pipesim {

template <class T>
class StageCompute {
 public:
  virtual ~StageCompute() = default;
  // The first stage ignores `input`; the last returns its loss as a 1-element buffer.
  virtual Buffer<T> forward(int microbatch, const Buffer<T>& input) = 0;
  // The last stage ignores `grad_output`; the first returns an empty buffer.
  virtual Buffer<T> backward_input(int microbatch, const Buffer<T>& grad_output) = 0;
  virtual void backward_weight(int microbatch) = 0;
  virtual T loss(int microbatch) const = 0;
  virtual std::vector<std::pair<std::string, std::vector<T>>> gradients() const = 0;
  virtual void zero_gradients() = 0;
  // A buffer of `count` elements in this stage's memory, for a receive to land in.
  virtual Buffer<T> allocate(std::size_t count) = 0;
  // Waits until the stage's queued work is done (a no-op on the CPU): action spans end when the work does.
  virtual void synchronize() {}
};

template <class T>
class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;
  virtual std::unique_ptr<StageCompute<T>> make_stage(const WorkloadSpec& spec, int first_layer, int count,
                                                      bool first_stage, bool last_stage, AllToAll<T> exchange) = 0;
  // The GPU kernels and copies run since the last call (on the CPU: the stages' operators), as `rank`'s, in
  // ns since `origin` on this process's steady clock; none when the device does not record them.
  virtual std::vector<KernelSpan> take_kernels(int rank, std::chrono::steady_clock::time_point origin) {
    (void)rank;
    (void)origin;
    return {};
  }
  // Prepares a thread other than the one that made the stages to run their work (the overlapped pairs'
  // second thread): a GPU device makes its context current there and records what it launches as its own.
  virtual void adopt_thread() {}
  // That thread is ending: what it launches from now on is no longer this device's.
  virtual void release_thread() {}
  // `count` elements of the memory stages hand each other (host memory here), for the link microbenchmark:
  // it then times the path the actions' transfers take (on a GPU, the staging through host memory too).
  virtual Buffer<T> transfer_buffer(std::size_t count) { return Buffer<T>(std::vector<T>(count)); }
};

// The CPU device: StageModel over kernels/cpu. With `record_ops`, every operator its stages run is timed
// and handed back by take_kernels() (runtime/op_log.hpp).
template <class T>
std::unique_ptr<Device<T>> make_cpu_device(bool record_ops = false);

}  // namespace pipesim
