// FP32 tensors rounded to FP8 E4M3 with one scale per tensor, for the FP8 GEMMs (gemm_fp8.hpp): the scale
// maps the tensor's largest magnitude onto E4M3's largest finite value (448), as per-tensor FP8 training
// recipes do. All pointers are device pointers; every call is asynchronous on `stream`.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace pipesim::cuda {

// E4M3's largest finite value: (1 + 6/8) · 2^8 (Micikevicius et al., "FP8 Formats for Deep Learning",
// arXiv 2209.05433, Table 1; the OCP 8-bit floating point specification).
inline constexpr float kE4m3Max = 448.0f;

// *amax = max(*amax, max |x|) over the [rows x cols] matrix with row stride ld. *amax must start at 0 (or a
// smaller maximum): the blocks combine by an atomic max on the bits, which orders non-negative floats.
void abs_max(int rows, int cols, const float* x, int ld, float* amax, cudaStream_t stream);

// E4M3 bytes of x · s, s = 448 / max(*amax, 1e-12) (1 when *amax is not finite), rounded to nearest and
// saturated: row-major [rows x cols], or with `transpose` [cols x rows] (dst[c·rows + r] = x[r·ld + c]).
// *dequant = 1 / s, what the GEMM multiplies back.
void quantize_e4m3(int rows, int cols, const float* x, int ld, bool transpose, const float* amax, std::uint8_t* dst,
                   float* dequant, cudaStream_t stream);

}  // namespace pipesim::cuda
