// FP8 E4M3 rounding (see fp8.hpp). 32 x 32 tiles: rows and columns come from the block's position, so no
// thread divides a 64-bit index, and a transposed write goes through shared memory so that both the reads
// and the writes of a warp touch consecutive addresses.
#include "kernels/cuda/fp8.hpp"

#include <algorithm>

#include <cuda_fp8.h>

#include "kernels/cuda/check.hpp"

namespace pipesim::cuda {
namespace {

constexpr int kTile = 32, kRowsPerPass = 8;  // a block of 32 x 8 threads covers a 32 x 32 tile in 4 passes

__global__ void abs_max_kernel(int rows, int cols, const float* x, int ld, float* amax) {
  __shared__ float part[kTile * kRowsPerPass];
  const int t = threadIdx.y * kTile + threadIdx.x;
  float m = 0;
  for (int r = blockIdx.y * kRowsPerPass + threadIdx.y; r < rows; r += gridDim.y * kRowsPerPass)
    for (int c = blockIdx.x * kTile + threadIdx.x; c < cols; c += gridDim.x * kTile)
      m = fmaxf(m, fabsf(x[static_cast<long long>(r) * ld + c]));
  part[t] = m;
  __syncthreads();
  for (int width = kTile * kRowsPerPass / 2; width > 0; width /= 2) {
    if (t < width) part[t] = fmaxf(part[t], part[t + width]);
    __syncthreads();
  }
  if (t == 0) atomicMax(reinterpret_cast<int*>(amax), __float_as_int(part[0]));  // non-negative: int order
}

// The scale from the tensor's largest magnitude, clamped so that a tensor of zeros or tiny values gives a
// finite scale (and an infinite or NaN maximum gives 1). The floor 1e-12 is assumed: far below any
// activation, weight or gradient magnitude the workload makes, and far above where 448/x overflows.
__device__ inline float scale_of(float top) {
  if (!(top < INFINITY)) return 1.0f;
  return kE4m3Max / fmaxf(top, 1e-12f);
}

__global__ void quantize_kernel(int rows, int cols, const float* x, int ld, bool transpose, const float* amax,
                                std::uint8_t* dst, float* dequant) {
  __shared__ float tile[kTile][kTile + 1];  // +1: a column of the tile spans all 32 banks
  const float scale = scale_of(*amax);
  if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0 && threadIdx.y == 0) *dequant = 1.0f / scale;
  const int r0 = blockIdx.y * kTile, c0 = blockIdx.x * kTile;
  auto round = [&](float v) { return __nv_cvt_float_to_fp8(v * scale, __NV_SATFINITE, __NV_E4M3); };
  if (!transpose) {
    for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
      const int r = r0 + i, c = c0 + threadIdx.x;
      if (r < rows && c < cols) dst[static_cast<long long>(r) * cols + c] = round(x[static_cast<long long>(r) * ld + c]);
    }
    return;
  }
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
    const int r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = x[static_cast<long long>(r) * ld + c];
  }
  __syncthreads();
  // dst is [cols x rows]: its row c0 + i, columns r0 + threadIdx.x.
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {
    const int c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) dst[static_cast<long long>(c) * rows + r] = round(tile[threadIdx.x][i]);
  }
}

dim3 tiles(int rows, int cols) { return dim3((cols + kTile - 1) / kTile, (rows + kTile - 1) / kTile); }

}  // namespace

void abs_max(int rows, int cols, const float* x, int ld, float* amax, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  dim3 grid = tiles(rows, cols);
  grid.x = std::min(grid.x, 64u);  // enough blocks to fill the GPU; each strides over the rest
  grid.y = std::min(grid.y, 1024u);
  abs_max_kernel<<<grid, dim3(kTile, kRowsPerPass), 0, stream>>>(rows, cols, x, ld, amax);
  check(cudaGetLastError(), "abs_max");
}

void quantize_e4m3(int rows, int cols, const float* x, int ld, bool transpose, const float* amax, std::uint8_t* dst,
                   float* dequant, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  if ((rows + kTile - 1) / kTile > 65535) check(cudaErrorInvalidConfiguration, "quantize_e4m3: too many rows");
  quantize_kernel<<<tiles(rows, cols), dim3(kTile, kRowsPerPass), 0, stream>>>(rows, cols, x, ld, transpose, amax, dst,
                                                                              dequant);
  check(cudaGetLastError(), "quantize_e4m3");
}

}  // namespace pipesim::cuda
