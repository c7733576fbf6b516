// Device memory that frees itself: one typed allocation on the current device, moved never copied, with
// host transfers for tests and for staging through host memory (Debian's MPI is not CUDA-aware).
// Given a stream, the allocation is stream-ordered (cudaMallocAsync / cudaFreeAsync from the device's
// pool): freeing then waits for nothing, where cudaFree waits for the whole device, which would tie the
// ranks that share a GPU to each other's work. The memory may be used on that stream, or elsewhere once
// the stream's work up to the allocation is known to be done.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/cuda/check.hpp"

namespace pipesim::cuda {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count > 0) check(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)), "cudaMalloc");
  }
  DeviceBuffer(std::size_t count, cudaStream_t stream) : count_(count), stream_(stream), ordered_(true) {
    if (count > 0)
      check(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(T), stream), "cudaMallocAsync");
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        count_(std::exchange(other.count_, 0)),
        stream_(other.stream_),
        ordered_(other.ordered_) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    std::swap(stream_, other.stream_);
    std::swap(ordered_, other.ordered_);
    return *this;
  }
  ~DeviceBuffer() { free(data_, stream_, ordered_); }

  // Frees memory the way a buffer made with (stream, ordered) would.
  static void free(T* data, cudaStream_t stream, bool ordered) {
    if (!data) return;
    if (ordered)
      cudaFreeAsync(data, stream);
    else
      cudaFree(data);
  }
  cudaStream_t stream() const { return stream_; }
  bool ordered() const { return ordered_; }

  // Gives up ownership: the caller frees the memory with free(pointer, stream(), ordered()).
  T* release() {
    count_ = 0;
    return std::exchange(data_, nullptr);
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return count_; }

  void upload(const std::vector<T>& host) {
    if (host.size() != count_) check(cudaErrorInvalidValue, "upload: size differs from the buffer's");
    if (count_) check(cudaMemcpy(data_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    if (count_) check(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
    return host;
  }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
  bool ordered_ = false;
};

}  // namespace pipesim::cuda
