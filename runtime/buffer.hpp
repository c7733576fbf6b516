// What one stage hands the next: an activation or a gradient, in the memory of the device that made it (host
// memory for the CPU device, GPU memory for the CUDA device), so tensors stay where they are computed. The
// executor only moves buffers between stages and gives their bytes to Comm; only a device reads elements.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace pipesim {

enum class Memory : unsigned char { Host, Gpu };

template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::vector<T> host) : host_(std::move(host)), size_(host_.size()) {}
  // `gpu` points at `size` elements of GPU memory; its deleter frees them.
  Buffer(std::shared_ptr<T> gpu, std::size_t size) : gpu_(std::move(gpu)), size_(size), memory_(Memory::Gpu) {}

  Memory memory() const { return memory_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(T); }
  bool empty() const { return size_ == 0; }
  T* data() { return memory_ == Memory::Host ? host_.data() : gpu_.get(); }
  const T* data() const { return memory_ == Memory::Host ? host_.data() : gpu_.get(); }
  // The elements of a host buffer (the CPU device's); an internal error for GPU memory.
  const std::vector<T>& host() const {
    if (memory_ != Memory::Host) throw Error("runtime: a GPU buffer read as host memory", Error::Kind::Internal);
    return host_;
  }

 private:
  std::vector<T> host_;
  std::shared_ptr<T> gpu_;
  std::size_t size_ = 0;
  Memory memory_ = Memory::Host;
};

}  // namespace pipesim
