// A stage's GEMM on the GPU as operators of its log (runtime/op_log.hpp): one GEMM operator, or under FP8
// math (GemmMath::Fp8) two, the operands' rounding to E4M3 (memory-bound, "fp8_quantize") and then the
// product, so that a profile fitted from the run's kernels prices them apart, as the cost model does
// (docs/cost-model.md §12: quantization kernels beside each FP8 GEMM). A GEMM FP8 cannot run (use_fp8)
// runs on BF16 tensor cores outside any operator: tagged, it would fit BF16 rates into the fp8 table.
#pragma once

#include <type_traits>

#include <cuda_runtime_api.h>

#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/gemm_fp8.hpp"
#include "runtime/op_log.hpp"
#include "runtime/tensor_math.hpp"

namespace pipesim {

template <class T>
void timed_gemm(cuda::Blas& blas, OpLog* log, char pass, const kernels::GemmParams<T>& p, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    if (blas.fp8() && cuda::use_fp8(*blas.fp8(), p)) {
      auto operands = [&] {
        OpScope op(log, "fp8_quantize", memory_work(pass, cuda::fp8_quantize_bytes(p)));
        return cuda::fp8_quantize(p, stream);
      }();
      OpScope op(log, detail::gemm_name(pass), detail::gemm_work(pass, p));
      cuda::fp8_multiply(*blas.fp8(), p, operands, stream);
      return;
    }
    if (blas.fp8()) {
      cuda::gemm<T>(blas, p, stream, false);
      return;
    }
  }
  OpScope op(log, detail::gemm_name(pass), detail::gemm_work(pass, p));
  cuda::gemm<T>(blas, p, stream);
}

}  // namespace pipesim
