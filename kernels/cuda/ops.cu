// The non-GEMM kernels (see ops.hpp): a block per row for the row-wise ones, reducing by a fixed tree; a thread
// per element otherwise. No atomics: every sum runs in one order on every call.
// fmt's headers do not compile under nvcc's host pass: messages here are built with std::to_string.
#include "kernels/cuda/ops.hpp"

#include <cmath>
#include <string>

#include "common/error.hpp"
#include "kernels/cuda/check.hpp"

namespace pipesim::cuda {
namespace {

constexpr int kBlock = 256;

int blocks(long long n) { return static_cast<int>((n + kBlock - 1) / kBlock); }

__device__ inline float dexp(float x) { return expf(x); }
__device__ inline double dexp(double x) { return exp(x); }
__device__ inline float dsqrt(float x) { return sqrtf(x); }
__device__ inline double dsqrt(double x) { return sqrt(x); }
template <class T>
__device__ inline T sigmoid(T x) {
  return T(1) / (T(1) + dexp(-x));
}

void launched(const char* what) { check(cudaGetLastError(), what); }

// One value per thread of the block (blockDim.x == kBlock) combined by a fixed halving tree: the same bits on
// every call, whatever the scheduling. Every thread gets the result.
template <class T, class Combine>
__device__ T block_reduce(T value, Combine combine) {
  __shared__ T part[kBlock];
  int t = threadIdx.x;
  part[t] = value;
  __syncthreads();
  for (int width = kBlock / 2; width > 0; width /= 2) {
    if (t < width) part[t] = combine(part[t], part[t + width]);
    __syncthreads();
  }
  T result = part[0];
  __syncthreads();
  return result;
}
template <class T>
__device__ T block_sum(T value) {
  return block_reduce(value, [](T a, T b) { return a + b; });
}
template <class T>
__device__ T block_max(T value) {
  return block_reduce(value, [](T a, T b) { return b > a ? b : a; });
}

// Row kernels: one block per row, each thread taking columns t, t + kBlock, ... in order.
template <class T>
__global__ void rmsnorm_forward_kernel(int cols, const T* x, const T* weight, T eps, T* y, T* rstd) {
  long long r = blockIdx.x;
  const T* xr = x + r * cols;
  T squares = 0;
  for (int c = threadIdx.x; c < cols; c += kBlock) squares += xr[c] * xr[c];
  squares = block_sum(squares);
  T rs = T(1) / dsqrt(squares / T(cols) + eps);
  if (threadIdx.x == 0) rstd[r] = rs;
  for (int c = threadIdx.x; c < cols; c += kBlock) y[r * cols + c] = xr[c] * rs * weight[c];
}

template <class T>
__global__ void rmsnorm_backward_input_kernel(int cols, const T* x, const T* weight, const T* rstd, const T* dy, T* dx) {
  long long r = blockIdx.x;
  const T* xr = x + r * cols;
  const T* dyr = dy + r * cols;
  T rs = rstd[r], dot = 0;
  for (int c = threadIdx.x; c < cols; c += kBlock) dot += dyr[c] * weight[c] * (xr[c] * rs);
  T mean = block_sum(dot) / T(cols);
  for (int c = threadIdx.x; c < cols; c += kBlock) dx[r * cols + c] = rs * (dyr[c] * weight[c] - xr[c] * rs * mean);
}

// Column sums: a block holds kColumns columns x kSlices row slices; each thread sums its slice's rows in
// order, then the slices are added in order.
constexpr int kColumns = 32, kSlices = 16;
template <class T>
__global__ void rmsnorm_backward_weight_kernel(int rows, int cols, const T* x, const T* rstd, const T* dy, T* dweight) {
  __shared__ T part[kSlices][kColumns + 1];
  int c = blockIdx.x * kColumns + threadIdx.x;
  T sum = 0;
  if (c < cols)
    for (int r = threadIdx.y; r < rows; r += kSlices) {
      long long at = static_cast<long long>(r) * cols + c;
      sum += dy[at] * (x[at] * rstd[r]);
    }
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  T total = 0;
  for (int j = 0; j < kSlices; ++j) total += part[j][threadIdx.x];
  dweight[c] += total;
}

// Row r keeps columns [0, live): all of them, the first min(r + 1, cols) when causal, or the first
// r mod period + 1 for the score rows of attention (period = seq).
template <class T>
__global__ void softmax_forward_kernel(int cols, const T* x, T* y, bool causal, int period) {
  long long r = blockIdx.x;
  int live = !causal ? cols : period > 0 ? static_cast<int>(r % period) + 1 : (r + 1 < cols ? static_cast<int>(r) + 1 : cols);
  const T* xr = x + r * cols;
  T* yr = y + r * cols;
  T top = xr[0];
  for (int c = threadIdx.x; c < live; c += kBlock) top = xr[c] > top ? xr[c] : top;
  top = block_max(top);  // also orders every read of x before the writes below (y may alias x)
  T total = 0;
  for (int c = threadIdx.x; c < live; c += kBlock) total += yr[c] = dexp(xr[c] - top);
  total = block_sum(total);
  for (int c = threadIdx.x; c < cols; c += kBlock) yr[c] = c < live ? yr[c] / total : T(0);
}

template <class T>
__global__ void softmax_backward_kernel(int cols, const T* y, const T* dy, T* dx) {
  long long r = blockIdx.x;
  const T* yr = y + r * cols;
  const T* dyr = dy + r * cols;
  T dot = 0;
  for (int c = threadIdx.x; c < cols; c += kBlock) dot += yr[c] * dyr[c];
  dot = block_sum(dot);  // every read of dy is done before dx (which may alias it) is written
  for (int c = threadIdx.x; c < cols; c += kBlock) dx[r * cols + c] = yr[c] * (dyr[c] - dot);
}

template <class T>
__global__ void top_k_kernel(int rows, int cols, int k, const T* x, int* index, T* value) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const T* xr = x + static_cast<long long>(r) * cols;
  int* ir = index + static_cast<long long>(r) * k;
  for (int j = 0; j < k; ++j) {
    int best = -1;
    for (int c = 0; c < cols; ++c) {
      bool taken = false;
      for (int t = 0; t < j; ++t) taken |= ir[t] == c;
      if (!taken && (best < 0 || xr[c] > xr[best])) best = c;
    }
    ir[j] = best;
    value[static_cast<long long>(r) * k + j] = xr[best];
  }
}

template <class T>
__global__ void swiglu_forward_kernel(int n, const T* gate, const T* up, T* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <class T>
__global__ void swiglu_backward_kernel(int n, const T* gate, const T* up, const T* dout, T* dgate, T* dup) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  T s = sigmoid(gate[i]);
  T g = dout[i];  // read first: dgate or dup may alias dout
  dup[i] = g * (gate[i] * s);
  dgate[i] = g * up[i] * (s * (T(1) + gate[i] * (T(1) - s)));
}

template <class T>
__global__ void add_kernel(int n, const T* a, const T* b, T* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

template <class T>
__global__ void gather_rows_kernel(int rows, int cols, const int* source, const T* in, T* out) {
  long long at = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (at >= static_cast<long long>(rows) * cols) return;
  long long r = at / cols;
  out[at] = in[static_cast<long long>(source[r]) * cols + at % cols];
}

template <class T>
__global__ void combine_rows_kernel(int tokens, int k, int cols, const int* slot, const T* weight, const T* in, T* out) {
  long long at = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (at >= static_cast<long long>(tokens) * cols) return;
  long long t = at / cols, c = at % cols;
  T sum = 0;
  for (int j = 0; j < k; ++j) {
    int from = slot[t * k + j];
    if (from >= 0) sum += weight[t * k + j] * in[static_cast<long long>(from) * cols + c];
  }
  out[at] = sum;
}

template <class T>
__global__ void moe_gate_grad_kernel(int k, int cols, const int* slot, const T* weight, const T* dy, const T* out,
                                     T* rows, T* dweight) {
  long long s = blockIdx.x, t = s / k;
  if (slot[s] < 0) {  // a dropped token (the same for the whole block: no thread reaches block_sum)
    if (threadIdx.x == 0) dweight[s] = 0;
    return;
  }
  long long at = static_cast<long long>(slot[s]) * cols;
  const T* d = dy + t * cols;
  const T w = weight[s];
  T dot = 0;
  for (int c = threadIdx.x; c < cols; c += kBlock) {
    dot += d[c] * out[at + c];
    rows[at + c] = w * d[c];
  }
  dot = block_sum(dot);
  if (threadIdx.x == 0) dweight[s] = dot;
}

template <class T>
__global__ void mse_loss_kernel(int n, const T* out, const T* target, T* dout, T* loss) {
  T squares = 0;
  for (int i = threadIdx.x; i < n; i += kBlock) {
    T d = out[i] - target[i];
    squares += d * d;
    dout[i] = d / T(n);
  }
  squares = block_sum(squares);
  if (threadIdx.x == 0) loss[0] = squares / T(2 * static_cast<long long>(n));
}

}  // namespace

template <class T>
void rmsnorm_forward(int rows, int cols, const T* x, const T* weight, T eps, T* y, T* rstd, cudaStream_t stream) {
  if (rows <= 0) return;
  rmsnorm_forward_kernel<<<rows, kBlock, 0, stream>>>(cols, x, weight, eps, y, rstd);
  launched("rmsnorm_forward");
}

template <class T>
void rmsnorm_backward_input(int rows, int cols, const T* x, const T* weight, const T* rstd, const T* dy, T* dx,
                            cudaStream_t stream) {
  if (rows <= 0) return;
  rmsnorm_backward_input_kernel<<<rows, kBlock, 0, stream>>>(cols, x, weight, rstd, dy, dx);
  launched("rmsnorm_backward_input");
}

template <class T>
void rmsnorm_backward_weight(int rows, int cols, const T* x, const T* rstd, const T* dy, T* dweight,
                             cudaStream_t stream) {
  if (cols <= 0) return;
  rmsnorm_backward_weight_kernel<<<(cols + kColumns - 1) / kColumns, dim3(kColumns, kSlices), 0, stream>>>(rows, cols, x,
                                                                                               rstd, dy, dweight);
  launched("rmsnorm_backward_weight");
}

template <class T>
void softmax_forward(int rows, int cols, const T* x, T* y, bool causal, cudaStream_t stream) {
  if (rows <= 0) return;
  softmax_forward_kernel<<<rows, kBlock, 0, stream>>>(cols, x, y, causal, 0);
  launched("softmax_forward");
}

template <class T>
void softmax_backward(int rows, int cols, const T* y, const T* dy, T* dx, cudaStream_t stream) {
  if (rows <= 0) return;
  softmax_backward_kernel<<<rows, kBlock, 0, stream>>>(cols, y, dy, dx);
  launched("softmax_backward");
}

template <class T>
void top_k(int rows, int cols, int k, const T* x, int* index, T* value, cudaStream_t stream) {
  if (rows < 0 || k < 1 || k > cols)
    throw Error("top_k: bad shape (rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                    " k=" + std::to_string(k) + ")",
                Error::Kind::Internal);
  if (rows == 0) return;
  top_k_kernel<<<blocks(rows), kBlock, 0, stream>>>(rows, cols, k, x, index, value);
  launched("top_k");
}

template <class T>
void swiglu_forward(int n, const T* gate, const T* up, T* out, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_forward_kernel<<<blocks(n), kBlock, 0, stream>>>(n, gate, up, out);
  launched("swiglu_forward");
}

template <class T>
void swiglu_backward(int n, const T* gate, const T* up, const T* dout, T* dgate, T* dup, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_backward_kernel<<<blocks(n), kBlock, 0, stream>>>(n, gate, up, dout, dgate, dup);
  launched("swiglu_backward");
}

template <class T>
void add(int n, const T* a, const T* b, T* out, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<blocks(n), kBlock, 0, stream>>>(n, a, b, out);
  launched("add");
}

template <class T>
void attention_softmax_forward(int rows, int seq, T* scores, cudaStream_t stream) {
  if (rows <= 0) return;
  softmax_forward_kernel<<<rows, kBlock, 0, stream>>>(seq, scores, scores, true, seq);
  launched("attention_softmax_forward");
}

template <class T>
void gather_rows(int rows, int cols, const int* source, const T* in, T* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  gather_rows_kernel<<<blocks(static_cast<long long>(rows) * cols), kBlock, 0, stream>>>(rows, cols, source, in, out);
  launched("gather_rows");
}

template <class T>
void combine_rows(int tokens, int k, int cols, const int* slot, const T* weight, const T* in, T* out,
                  cudaStream_t stream) {
  if (tokens <= 0 || cols <= 0) return;
  combine_rows_kernel<<<blocks(static_cast<long long>(tokens) * cols), kBlock, 0, stream>>>(tokens, k, cols, slot,
                                                                                           weight, in, out);
  launched("combine_rows");
}

template <class T>
void moe_gate_grad(int tokens, int k, int cols, const int* slot, const T* weight, const T* dy, const T* out, T* rows,
                   T* dweight, cudaStream_t stream) {
  if (tokens <= 0 || k <= 0) return;
  moe_gate_grad_kernel<<<tokens * k, kBlock, 0, stream>>>(k, cols, slot, weight, dy, out, rows, dweight);
  launched("moe_gate_grad");
}

template <class T>
void mse_loss(int n, const T* out, const T* target, T* dout, T* loss, cudaStream_t stream) {
  if (n <= 0) throw Error("mse_loss: no elements", Error::Kind::Internal);
  mse_loss_kernel<<<1, kBlock, 0, stream>>>(n, out, target, dout, loss);
  launched("mse_loss");
}

#define PIPESIM_CUDA_OPS_INSTANTIATE(T)                                                                                \
  template void rmsnorm_forward<T>(int, int, const T*, const T*, T, T*, T*, cudaStream_t);                             \
  template void rmsnorm_backward_input<T>(int, int, const T*, const T*, const T*, const T*, T*, cudaStream_t);         \
  template void rmsnorm_backward_weight<T>(int, int, const T*, const T*, const T*, T*, cudaStream_t);                  \
  template void softmax_forward<T>(int, int, const T*, T*, bool, cudaStream_t);                                        \
  template void softmax_backward<T>(int, int, const T*, const T*, T*, cudaStream_t);                                   \
  template void top_k<T>(int, int, int, const T*, int*, T*, cudaStream_t);                                            \
  template void swiglu_forward<T>(int, const T*, const T*, T*, cudaStream_t);                                          \
  template void swiglu_backward<T>(int, const T*, const T*, const T*, T*, T*, cudaStream_t);                           \
  template void add<T>(int, const T*, const T*, T*, cudaStream_t);                                                     \
  template void attention_softmax_forward<T>(int, int, T*, cudaStream_t);                                               \
  template void gather_rows<T>(int, int, const int*, const T*, T*, cudaStream_t);                                      \
  template void combine_rows<T>(int, int, int, const int*, const T*, const T*, T*, cudaStream_t);                      \
  template void moe_gate_grad<T>(int, int, int, const int*, const T*, const T*, const T*, T*, T*, cudaStream_t);     \
  template void mse_loss<T>(int, const T*, const T*, T*, T*, cudaStream_t);
PIPESIM_CUDA_OPS_INSTANTIATE(float)
PIPESIM_CUDA_OPS_INSTANTIATE(double)
#undef PIPESIM_CUDA_OPS_INSTANTIATE

}  // namespace pipesim::cuda
