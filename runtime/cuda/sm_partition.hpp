// Streams for a rank, on the whole GPU or on its share of the GPU's SMs. When k ranks share one GPU (a
// one-GPU machine running a 2- or 4-rank pipeline), their kernels would otherwise compete for every SM, so
// each action's duration would depend on what the other ranks happen to run: nothing like k GPUs, and not
// what the simulator predicts. A green context (CUDA 12.4+, driver API) gives each rank a disjoint set of
// SMs, 1/k of them rounded down to the driver's granularity, sharing the device's memory; docs/gpu-runtime.md
// §7. A rank's thread makes its partition current and keeps it so: each rank runs on one thread. The driver is reached through cudaGetDriverEntryPointByVersion, so nothing links libcuda and the
// program still starts on machines without a driver.
#pragma once

#include <memory>
#include <string>

#include <cuda_runtime_api.h>

namespace pipesim {

class SmPartition;

// A non-blocking stream, destroyed with its last owner; it keeps its partition alive.
class GpuStream {
 public:
  GpuStream(cudaStream_t stream, std::shared_ptr<const SmPartition> partition);
  ~GpuStream();
  GpuStream(const GpuStream&) = delete;
  GpuStream& operator=(const GpuStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_;
  std::shared_ptr<const SmPartition> partition_;
};

class SmPartition : public std::enable_shared_from_this<SmPartition> {
 public:
  // Share `slot` of `count` on CUDA device `device`. Throws Error naming the reason when the driver cannot
  // (too old, too few SMs for `count` shares).
  static std::shared_ptr<SmPartition> create(int device, int slot, int count);
  ~SmPartition();
  SmPartition(const SmPartition&) = delete;
  SmPartition& operator=(const SmPartition&) = delete;

  // Makes the partition the calling thread's current context, so that the runtime API's allocations,
  // copies, cuBLAS handles and launches on this thread run in it (cudaSetDevice undoes this).
  void make_current() const;
  std::shared_ptr<GpuStream> make_stream() const;
  int sm_count() const { return sm_count_; }
  int device_sm_count() const { return device_sm_count_; }

 private:
  struct Driver;
  SmPartition() = default;
  void* context_ = nullptr;  // CUgreenCtx
  std::shared_ptr<const Driver> driver_;
  int sm_count_ = 0, device_sm_count_ = 0;
};

// A stream on the whole device (the primary context).
std::shared_ptr<GpuStream> make_device_stream();

}  // namespace pipesim
