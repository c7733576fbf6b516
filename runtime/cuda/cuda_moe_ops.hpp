// DeviceMoe's kernel set on the GPU (runtime/device_moe.hpp): tensors are stream-ordered device buffers of
// the stage's stream, the kernels are kernels/cuda's on that stream, and downloads wait for the stream
// (the stage's stream does not synchronise with the legacy default stream, so a plain cudaMemcpy would not
// wait for its kernels).
#pragma once

#include <cstddef>
#include <vector>

#include <cuda_runtime_api.h>

#include "kernels/cuda/buffer.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/ops.hpp"
#include "runtime/cuda/timed_gemm.hpp"

namespace pipesim {

template <class T>
class CudaMoeOps {
 public:
  using Value = T;
  using Tensor = cuda::DeviceBuffer<T>;
  using Index = cuda::DeviceBuffer<int>;
  // `blas` must outlive this and be used on `stream` only.
  CudaMoeOps(cudaStream_t stream, cuda::Blas* blas) : stream_(stream), blas_(blas) {}

  Tensor tensor(std::size_t n) { return Tensor(n, stream_); }
  Index index(std::size_t n) { return Index(n, stream_); }
  template <class U>
  cuda::DeviceBuffer<U> upload(const std::vector<U>& host) {
    cuda::DeviceBuffer<U> b(host.size(), stream_);
    // From pageable memory the copy returns once the bytes are staged: `host` may go, no wait needed.
    if (!host.empty())
      cuda::check(cudaMemcpyAsync(b.data(), host.data(), host.size() * sizeof(U), cudaMemcpyHostToDevice, stream_),
                  "MoE upload");
    return b;
  }
  template <class U>
  std::vector<U> download(const cuda::DeviceBuffer<U>& b) {
    std::vector<U> host(b.size());
    if (!host.empty())
      cuda::check(cudaMemcpyAsync(host.data(), b.data(), host.size() * sizeof(U), cudaMemcpyDeviceToHost, stream_),
                  "MoE download");
    cuda::check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    return host;
  }

  // A GEMM as operators of `log` (pass F, I or W): timed_gemm.hpp.
  void gemm(OpLog* log, char pass, const kernels::GemmParams<T>& p) { timed_gemm(*blas_, log, pass, p, stream_); }
  void softmax_forward(int rows, int cols, const T* x, T* y) { cuda::softmax_forward(rows, cols, x, y, false, stream_); }
  void softmax_backward(int rows, int cols, const T* y, const T* dy, T* dx) {
    cuda::softmax_backward(rows, cols, y, dy, dx, stream_);
  }
  void top_k(int rows, int cols, int k, const T* x, int* index, T* value) {
    cuda::top_k(rows, cols, k, x, index, value, stream_);
  }
  void swiglu_forward(int n, const T* gate, const T* up, T* out) { cuda::swiglu_forward(n, gate, up, out, stream_); }
  void swiglu_backward(int n, const T* gate, const T* up, const T* dout, T* dgate, T* dup) {
    cuda::swiglu_backward(n, gate, up, dout, dgate, dup, stream_);
  }
  void gather_rows(int rows, int cols, const int* source, const T* in, T* out) {
    cuda::gather_rows(rows, cols, source, in, out, stream_);
  }
  void combine_rows(int tokens, int k, int cols, const int* slot, const T* weight, const T* in, T* out) {
    cuda::combine_rows(tokens, k, cols, slot, weight, in, out, stream_);
  }
  void moe_gate_grad(int tokens, int k, int cols, const int* slot, const T* weight, const T* dy, const T* out,
                     T* rows, T* dweight) {
    cuda::moe_gate_grad(tokens, k, cols, slot, weight, dy, out, rows, dweight, stream_);
  }

 private:
  cudaStream_t stream_;
  cuda::Blas* blas_;
};

}  // namespace pipesim
