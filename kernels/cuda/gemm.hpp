// Row-major GEMM on the GPU through cuBLAS, with the CPU kernel's contract (kernels/cpu/gemm.hpp):
// C = alpha·op(A)·op(B) + beta·C, op(A) m x k, op(B) k x n, leading dimensions are row strides. cuBLAS is
// column-major, so the call computes Cᵀ = op(B)ᵀ·op(A)ᵀ, which is the same memory. FP32 runs without
// TF32 (cuBLAS's default math mode), so results match the CPU reference to rounding, unless the handle is
// set to tensor-core math for timing runs (GemmMath).
#pragma once

#include <memory>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cuda/gemm_math.hpp"

namespace pipesim::cuda {

// One cuBLAS handle, bound to one stream at a time. Not copyable; threads may take turns with it (an
// overlapped pair's two threads do), never use it at once.
class Blas {
 public:
  explicit Blas(GemmMath math = GemmMath::Exact);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  cublasHandle_t handle() const { return handle_; }
  GemmMath math() const { return math_; }
  // With GemmMath::Fp8: the cuBLASLt handle, workspace and per-shape plans (gemm_fp8.hpp); else null.
  struct Fp8;
  Fp8* fp8() const { return fp8_.get(); }
  // FP8 GEMMs that ran on BF16 tensor cores because cuBLASLt has no FP8 kernel for their shape.
  long long fp8_fallbacks() const;

 private:
  cublasHandle_t handle_ = nullptr;
  GemmMath math_;
  std::unique_ptr<Fp8> fp8_;
};

// Throws Error naming `what` and cuBLAS's status unless it is CUBLAS_STATUS_SUCCESS.
void check(cublasStatus_t status, const char* what);

// a, b, c are device pointers. Runs on `stream`; returns without waiting. With FP8 math, `try_fp8` false
// runs it straight on BF16 tensor cores (what use_fp8 refused: runtime/cuda/timed_gemm.hpp).
template <class T>
void gemm(Blas& blas, const kernels::GemmParams<T>& p, cudaStream_t stream, bool try_fp8 = true);

// `batch` GEMMs of p's shape in one call: GEMM i reads a + i·stride_a and b + i·stride_b and writes
// c + i·stride_c (strides in elements). Attention's per-head products.
struct BatchStrides {
  int batch = 1;
  long long a = 0, b = 0, c = 0;
};
template <class T>
void gemm_batched(Blas& blas, const kernels::GemmParams<T>& p, const BatchStrides& strides, cudaStream_t stream);

}  // namespace pipesim::cuda
