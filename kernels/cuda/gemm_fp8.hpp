// FP8 GEMMs through cuBLASLt on FP32 storage (GemmMath::Fp8, for timing runs): both operands rounded to
// E4M3 with a per-tensor scale (fp8.hpp) into scratch laid out as cuBLASLt's FP8 kernels require (the "TN"
// form: both operands K-major), multiplied with FP32 accumulation, the scales multiplied back, and written
// to the FP32 C (beta adds C as before). The rounding and the product are two steps, so that the runtime
// can time each as an operator of its own (runtime/cuda/timed_gemm.hpp); gemm() runs both.
#pragma once

#include <cstddef>
#include <map>
#include <tuple>
#include <utility>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cuda/gemm.hpp"

namespace pipesim::cuda {

struct Blas::Fp8 {
  Fp8();
  ~Fp8();
  Fp8(const Fp8&) = delete;
  Fp8& operator=(const Fp8&) = delete;

  struct Plan {  // descriptors and the heuristic's algorithm for one shape; ok false: no FP8 kernel for it
    bool ok = false;
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t x = nullptr, y = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  // 32 MiB: the workspace the cuBLAS documentation recommends on Hopper (cublasSetWorkspace).
  std::size_t workspace_bytes = std::size_t(32) << 20;
  std::map<std::tuple<int, int, int, int>, Plan> plans;   // by (m, n, k, ldc)
  long long fallbacks = 0;                                // GEMMs that ran on BF16 instead
};

// Whether `p` runs through FP8: false, counted in lt.fallbacks and said on standard error the first time,
// when cuBLASLt has no FP8 kernel for it (n and k must be multiples of 16, C 16-byte aligned); the caller
// then runs it on BF16 tensor cores. Throws Error when cuBLASLt fails otherwise.
bool use_fp8(Blas::Fp8& lt, const kernels::GemmParams<float>& p);

// The two steps, so that a caller can time each as an operator of its own (runtime/cuda/timed_gemm.hpp):
// the operands rounded to E4M3 into scratch (memory-bound kernels), then the product.
class Fp8Operands {
 public:
  Fp8Operands(Fp8Operands&& other) noexcept
      : scratch_(std::exchange(other.scratch_, nullptr)), stream_(other.stream_), x_offset_bytes_(other.x_offset_bytes_), y_offset_bytes_(other.y_offset_bytes_) {}
  Fp8Operands(const Fp8Operands&) = delete;
  Fp8Operands& operator=(const Fp8Operands&) = delete;
  Fp8Operands& operator=(Fp8Operands&&) = delete;
  ~Fp8Operands();  // frees the scratch in the stream's order

 private:
  friend Fp8Operands fp8_quantize(const kernels::GemmParams<float>& p, cudaStream_t stream);
  friend void fp8_multiply(Blas::Fp8& lt, const kernels::GemmParams<float>& p, const Fp8Operands& operands,
                           cudaStream_t stream);
  Fp8Operands(std::size_t bytes, cudaStream_t stream);
  char* scratch_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::size_t x_offset_bytes_ = 0, y_offset_bytes_ = 0;  // of X and Y in the scratch
};
Fp8Operands fp8_quantize(const kernels::GemmParams<float>& p, cudaStream_t stream);
// C = alpha·op(A)·op(B) + beta·C from the rounded operands; `p` must be the one they were rounded from and
// use_fp8(lt, p) true.
void fp8_multiply(Blas::Fp8& lt, const kernels::GemmParams<float>& p, const Fp8Operands& operands, cudaStream_t stream);
// Bytes the rounding moves: each operand read twice as FP32 (its largest magnitude, then its values) and
// written once as FP8.
double fp8_quantize_bytes(const kernels::GemmParams<float>& p);

}  // namespace pipesim::cuda
