// FP8 E4M3 rounding (see fp8.hpp).
#include "kernels/cuda/fp8.hpp"

#include <algorithm>

#include <cuda_fp8.h>

#include "kernels/cuda/check.hpp"

namespace pipesim::cuda {
namespace {

constexpr int kBlock = 256;

__global__ void abs_max_kernel(long long n, int cols, const float* x, int ld, float* amax) {
  __shared__ float part[kBlock];
  float m = 0;
  for (long long i = blockIdx.x * static_cast<long long>(kBlock) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * kBlock)
    m = fmaxf(m, fabsf(x[(i / cols) * ld + i % cols]));
  part[threadIdx.x] = m;
  __syncthreads();
  for (int width = kBlock / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) part[threadIdx.x] = fmaxf(part[threadIdx.x], part[threadIdx.x + width]);
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicMax(reinterpret_cast<int*>(amax), __float_as_int(part[0]));
}

__global__ void quantize_kernel(long long n, int rows, int cols, const float* x, int ld, bool transpose,
                                const float* amax, std::uint8_t* dst, float* dequant) {
  const float top = *amax;
  const float scale = top > 0 ? kE4m3Max / top : 1.0f;
  long long o = blockIdx.x * static_cast<long long>(kBlock) + threadIdx.x;
  if (o == 0) *dequant = 1.0f / scale;
  if (o >= n) return;
  long long r = transpose ? o % rows : o / cols, c = transpose ? o / rows : o % cols;
  dst[o] = __nv_cvt_float_to_fp8(x[r * ld + c] * scale, __NV_SATFINITE, __NV_E4M3);
}

}  // namespace

void abs_max(int rows, int cols, const float* x, int ld, float* amax, cudaStream_t stream) {
  const long long n = static_cast<long long>(rows) * cols;
  if (n <= 0) return;
  const int blocks = static_cast<int>(std::min<long long>((n + kBlock - 1) / kBlock, 1024));
  abs_max_kernel<<<blocks, kBlock, 0, stream>>>(n, cols, x, ld, amax);
  check(cudaGetLastError(), "abs_max");
}

void quantize_e4m3(int rows, int cols, const float* x, int ld, bool transpose, const float* amax, std::uint8_t* dst,
                   float* dequant, cudaStream_t stream) {
  const long long n = static_cast<long long>(rows) * cols;
  if (n <= 0) return;
  quantize_kernel<<<static_cast<int>((n + kBlock - 1) / kBlock), kBlock, 0, stream>>>(n, rows, cols, x, ld, transpose,
                                                                                        amax, dst, dequant);
  check(cudaGetLastError(), "quantize_e4m3");
}

}  // namespace pipesim::cuda
