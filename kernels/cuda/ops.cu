// The non-GEMM kernels (see ops.hpp): one thread per row, column or element, each summing in a fixed order.
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

template <class T>
__global__ void rmsnorm_forward_kernel(int rows, int cols, const T* x, const T* weight, T eps, T* y, T* rstd) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const T* xr = x + static_cast<long long>(r) * cols;
  T squares = 0;
  for (int c = 0; c < cols; ++c) squares += xr[c] * xr[c];
  T rs = T(1) / dsqrt(squares / T(cols) + eps);
  rstd[r] = rs;
  for (int c = 0; c < cols; ++c) y[static_cast<long long>(r) * cols + c] = xr[c] * rs * weight[c];
}

template <class T>
__global__ void rmsnorm_backward_input_kernel(int rows, int cols, const T* x, const T* weight, const T* rstd,
                                              const T* dy, T* dx) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const T* xr = x + static_cast<long long>(r) * cols;
  const T* dyr = dy + static_cast<long long>(r) * cols;
  T rs = rstd[r], dot = 0;
  for (int c = 0; c < cols; ++c) dot += dyr[c] * weight[c] * (xr[c] * rs);
  T mean = dot / T(cols);
  for (int c = 0; c < cols; ++c) dx[static_cast<long long>(r) * cols + c] = rs * (dyr[c] * weight[c] - xr[c] * rs * mean);
}

template <class T>
__global__ void rmsnorm_backward_weight_kernel(int rows, int cols, const T* x, const T* rstd, const T* dy, T* dweight) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  T sum = 0;
  for (int r = 0; r < rows; ++r) {
    long long at = static_cast<long long>(r) * cols + c;
    sum += dy[at] * (x[at] * rstd[r]);
  }
  dweight[c] += sum;
}

template <class T>
__device__ void softmax_row(int cols, int live, const T* xr, T* yr) {
  T top = xr[0];
  for (int c = 1; c < live; ++c) top = xr[c] > top ? xr[c] : top;
  T total = 0;
  for (int c = 0; c < live; ++c) total += yr[c] = dexp(xr[c] - top);
  for (int c = 0; c < live; ++c) yr[c] /= total;
  for (int c = live; c < cols; ++c) yr[c] = 0;
}

template <class T>
__global__ void softmax_forward_kernel(int rows, int cols, const T* x, T* y, bool causal) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  int live = causal ? (r + 1 < cols ? r + 1 : cols) : cols;
  softmax_row(cols, live, x + static_cast<long long>(r) * cols, y + static_cast<long long>(r) * cols);
}

template <class T>
__global__ void softmax_backward_kernel(int rows, int cols, const T* y, const T* dy, T* dx) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const T* yr = y + static_cast<long long>(r) * cols;
  const T* dyr = dy + static_cast<long long>(r) * cols;
  T dot = 0;
  for (int c = 0; c < cols; ++c) dot += yr[c] * dyr[c];
  for (int c = 0; c < cols; ++c) dx[static_cast<long long>(r) * cols + c] = yr[c] * (dyr[c] - dot);
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

// Element (b, i, h·D + d) of a [batch·seq x heads·head_dim] tensor, and row (b, h, i) of the probabilities.
__device__ inline long long element(const AttentionShape& s, int b, int h, int i, int d) {
  return (static_cast<long long>(b) * s.seq + i) * s.heads * s.head_dim + static_cast<long long>(h) * s.head_dim + d;
}
__device__ inline long long probs_row(const AttentionShape& s, int b, int h, int i) {
  return ((static_cast<long long>(b) * s.heads + h) * s.seq + i) * s.seq;
}

template <class T>
__global__ void attention_forward_kernel(AttentionShape s, T scale, const T* q, const T* k, const T* v, T* probs, T* out) {
  long long row = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= static_cast<long long>(s.batch) * s.heads * s.seq) return;
  int i = static_cast<int>(row % s.seq), h = static_cast<int>(row / s.seq % s.heads), b = static_cast<int>(row / s.seq / s.heads);
  T* p = probs + probs_row(s, b, h, i);
  for (int j = 0; j < s.seq; ++j) {
    T dot = 0;
    for (int d = 0; d < s.head_dim; ++d) dot += q[element(s, b, h, i, d)] * k[element(s, b, h, j, d)];
    p[j] = scale * dot;
  }
  softmax_row(s.seq, i + 1, p, p);
  for (int d = 0; d < s.head_dim; ++d) {
    T sum = 0;
    for (int j = 0; j <= i; ++j) sum += p[j] * v[element(s, b, h, j, d)];
    out[element(s, b, h, i, d)] = sum;
  }
}

// ds[i, j] = P(i, j) · (dout_i · v_j - Σ_j' P(i, j') · dout_i · v_j'), per (b, h, i).
template <class T>
__global__ void attention_score_grad_kernel(AttentionShape s, const T* v, const T* probs, const T* dout, T* ds) {
  long long row = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= static_cast<long long>(s.batch) * s.heads * s.seq) return;
  int i = static_cast<int>(row % s.seq), h = static_cast<int>(row / s.seq % s.heads), b = static_cast<int>(row / s.seq / s.heads);
  const T* p = probs + probs_row(s, b, h, i);
  T* g = ds + probs_row(s, b, h, i);
  T dot = 0;
  for (int j = 0; j < s.seq; ++j) {
    T dp = 0;
    for (int d = 0; d < s.head_dim; ++d) dp += dout[element(s, b, h, i, d)] * v[element(s, b, h, j, d)];
    g[j] = dp;
    dot += p[j] * dp;
  }
  for (int j = 0; j < s.seq; ++j) g[j] = p[j] * (g[j] - dot);
}

// dq, dk, dv at (b, h, i, d), each a sum over j in order.
template <class T>
__global__ void attention_input_grad_kernel(AttentionShape s, T scale, const T* q, const T* k, const T* probs,
                                            const T* dout, const T* ds, T* dq, T* dk, T* dv) {
  long long at = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (at >= static_cast<long long>(s.batch) * s.heads * s.seq * s.head_dim) return;
  int d = static_cast<int>(at % s.head_dim);
  long long row = at / s.head_dim;
  int i = static_cast<int>(row % s.seq), h = static_cast<int>(row / s.seq % s.heads), b = static_cast<int>(row / s.seq / s.heads);
  T sq = 0, sk = 0, sv = 0;
  for (int j = 0; j < s.seq; ++j) {
    sq += ds[probs_row(s, b, h, i) + j] * k[element(s, b, h, j, d)];
    sk += ds[probs_row(s, b, h, j) + i] * q[element(s, b, h, j, d)];
    sv += probs[probs_row(s, b, h, j) + i] * dout[element(s, b, h, j, d)];
  }
  dq[element(s, b, h, i, d)] = scale * sq;
  dk[element(s, b, h, i, d)] = scale * sk;
  dv[element(s, b, h, i, d)] = sv;
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
__global__ void mse_loss_kernel(int n, const T* out, const T* target, T* dout, T* loss) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  T squares = 0;
  for (int i = 0; i < n; ++i) {
    T d = out[i] - target[i];
    squares += d * d;
    dout[i] = d / T(n);
  }
  loss[0] = squares / T(2 * static_cast<long long>(n));
}

void check_shape(const AttentionShape& s) {
  if (s.batch <= 0 || s.seq <= 0 || s.heads <= 0 || s.head_dim <= 0)
    throw Error("attention: bad shape (batch=" + std::to_string(s.batch) + " seq=" + std::to_string(s.seq) +
                    " heads=" + std::to_string(s.heads) + " head_dim=" + std::to_string(s.head_dim) + ")",
                Error::Kind::Internal);
}

}  // namespace

template <class T>
void rmsnorm_forward(int rows, int cols, const T* x, const T* weight, T eps, T* y, T* rstd, cudaStream_t stream) {
  if (rows <= 0) return;
  rmsnorm_forward_kernel<<<blocks(rows), kBlock, 0, stream>>>(rows, cols, x, weight, eps, y, rstd);
  launched("rmsnorm_forward");
}

template <class T>
void rmsnorm_backward_input(int rows, int cols, const T* x, const T* weight, const T* rstd, const T* dy, T* dx,
                            cudaStream_t stream) {
  if (rows <= 0) return;
  rmsnorm_backward_input_kernel<<<blocks(rows), kBlock, 0, stream>>>(rows, cols, x, weight, rstd, dy, dx);
  launched("rmsnorm_backward_input");
}

template <class T>
void rmsnorm_backward_weight(int rows, int cols, const T* x, const T* rstd, const T* dy, T* dweight,
                             cudaStream_t stream) {
  if (cols <= 0) return;
  rmsnorm_backward_weight_kernel<<<blocks(cols), kBlock, 0, stream>>>(rows, cols, x, rstd, dy, dweight);
  launched("rmsnorm_backward_weight");
}

template <class T>
void softmax_forward(int rows, int cols, const T* x, T* y, bool causal, cudaStream_t stream) {
  if (rows <= 0) return;
  softmax_forward_kernel<<<blocks(rows), kBlock, 0, stream>>>(rows, cols, x, y, causal);
  launched("softmax_forward");
}

template <class T>
void softmax_backward(int rows, int cols, const T* y, const T* dy, T* dx, cudaStream_t stream) {
  if (rows <= 0) return;
  softmax_backward_kernel<<<blocks(rows), kBlock, 0, stream>>>(rows, cols, y, dy, dx);
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
void attention_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* probs, T* out,
                       cudaStream_t stream) {
  check_shape(s);
  T scale = T(1) / std::sqrt(T(s.head_dim));
  long long rows = static_cast<long long>(s.batch) * s.heads * s.seq;
  attention_forward_kernel<<<blocks(rows), kBlock, 0, stream>>>(s, scale, q, k, v, probs, out);
  launched("attention_forward");
}

template <class T>
void attention_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* probs, const T* dout,
                        T* dq, T* dk, T* dv, T* scratch, cudaStream_t stream) {
  check_shape(s);
  T scale = T(1) / std::sqrt(T(s.head_dim));
  long long rows = static_cast<long long>(s.batch) * s.heads * s.seq;
  attention_score_grad_kernel<<<blocks(rows), kBlock, 0, stream>>>(s, v, probs, dout, scratch);
  launched("attention_backward (scores)");
  attention_input_grad_kernel<<<blocks(rows * s.head_dim), kBlock, 0, stream>>>(s, scale, q, k, probs, dout, scratch,
                                                                                 dq, dk, dv);
  launched("attention_backward (inputs)");
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
void mse_loss(int n, const T* out, const T* target, T* dout, T* loss, cudaStream_t stream) {
  if (n <= 0) throw Error("mse_loss: no elements", Error::Kind::Internal);
  mse_loss_kernel<<<1, 1, 0, stream>>>(n, out, target, dout, loss);
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
  template void attention_forward<T>(const AttentionShape&, const T*, const T*, const T*, T*, T*, cudaStream_t);       \
  template void attention_backward<T>(const AttentionShape&, const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                      T*, T*, cudaStream_t);                                                           \
  template void gather_rows<T>(int, int, const int*, const T*, T*, cudaStream_t);                                      \
  template void combine_rows<T>(int, int, int, const int*, const T*, const T*, T*, cudaStream_t);                      \
  template void mse_loss<T>(int, const T*, const T*, T*, T*, cudaStream_t);
PIPESIM_CUDA_OPS_INSTANTIATE(float)
PIPESIM_CUDA_OPS_INSTANTIATE(double)
#undef PIPESIM_CUDA_OPS_INSTANTIATE

}  // namespace pipesim::cuda
