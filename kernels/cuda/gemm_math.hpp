// How the CUDA device's FP32 GEMMs compute (kernels/cuda/gemm.hpp), in a header without CUDA's: exactly
// (FP32 FMA), or on tensor cores with the inputs rounded to TF32 or BF16 inside cuBLAS
// (CUBLAS_COMPUTE_32F_FAST_TF32 / _FAST_16BF), the storage staying FP32. Tensor-core math is for timing runs:
// the GEMMs then run near the GPU's TF32 or BF16 rate (docs/gpu-runtime.md §2). FP64 GEMMs are always exact.
#pragma once

namespace pipesim::cuda {

enum class GemmMath { Exact, Tf32, Bf16 };

}  // namespace pipesim::cuda
