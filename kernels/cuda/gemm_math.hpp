// How the CUDA device's FP32 GEMMs compute (kernels/cuda/gemm.hpp), in a header without CUDA's: exactly
// (FP32 FMA), or on tensor cores with the inputs rounded to TF32 or BF16 inside cuBLAS
// (CUBLAS_COMPUTE_32F_FAST_TF32 / _FAST_16BF), or to FP8 E4M3 with a per-tensor scale through cuBLASLt
// (kernels/cuda/gemm_fp8.hpp; attention's batched GEMMs, and shapes cuBLASLt's FP8 kernels refuse, take
// BF16), the storage staying FP32. Tensor-core math is for timing runs: the GEMMs then run near the GPU's
// TF32, BF16 or FP8 rate (docs/gpu-runtime.md §2). FP64 GEMMs are always exact.
#pragma once

namespace pipesim::cuda {

enum class GemmMath { Exact, Tf32, Bf16, Fp8 };

}  // namespace pipesim::cuda
