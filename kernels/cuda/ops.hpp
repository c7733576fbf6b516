// The transformer's non-GEMM operations on the GPU, with the CPU kernels' contracts (kernels/cpu/ops.hpp):
// RMSNorm, softmax, top-k, SiLU/SwiGLU, add, the MoE token permutation (gather rows into expert order,
// and the weighted sum back) and the loss; attention is in attention.hpp. Correct and reasonably fast, not
// tuned: row-wise ops take a block per row and reduce by a fixed tree, so equal inputs give equal bits on
// every call and no result depends on a race (no atomics). All pointers are device pointers; every call
// is asynchronous on `stream` and checks its launch.
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cpu/ops.hpp"

namespace pipesim::cuda {

using kernels::AttentionShape;

template <class T>
void rmsnorm_forward(int rows, int cols, const T* x, const T* weight, T eps, T* y, T* rstd, cudaStream_t stream);
template <class T>
void rmsnorm_backward_input(int rows, int cols, const T* x, const T* weight, const T* rstd, const T* dy, T* dx,
                            cudaStream_t stream);
// dweight += Σ_rows dy · x̂ (the column sum first, then added, as on the CPU).
template <class T>
void rmsnorm_backward_weight(int rows, int cols, const T* x, const T* rstd, const T* dy, T* dweight,
                             cudaStream_t stream);

template <class T>
void softmax_forward(int rows, int cols, const T* x, T* y, bool causal, cudaStream_t stream);
template <class T>
void softmax_backward(int rows, int cols, const T* y, const T* dy, T* dx, cudaStream_t stream);

// Ties: the lower column first (the CPU kernel's order). 1 <= k <= cols.
template <class T>
void top_k(int rows, int cols, int k, const T* x, int* index, T* value, cudaStream_t stream);

template <class T>
void swiglu_forward(int n, const T* gate, const T* up, T* out, cudaStream_t stream);
template <class T>
void swiglu_backward(int n, const T* gate, const T* up, const T* dout, T* dgate, T* dup, cudaStream_t stream);
template <class T>
void add(int n, const T* a, const T* b, T* out, cudaStream_t stream);

// In place over `rows` rows of `seq` scores (the batch·heads score matrices, one after another): row r
// keeps its first r mod seq + 1 columns (causal), the rest become exactly 0.
template <class T>
void attention_softmax_forward(int rows, int seq, T* scores, cudaStream_t stream);

// MoE token permutation. Gather: out[r] = in[source[r]] for r < rows (rows of `cols` elements), the
// dispatch order. Combine: out[t] = Σ_j weight[t·k + j] · in[slot[t·k + j]], j = 0..k-1 in order, for
// t < tokens; a slot < 0 contributes nothing (a dropped token).
template <class T>
void gather_rows(int rows, int cols, const int* source, const T* in, T* out, cudaStream_t stream);
template <class T>
void combine_rows(int tokens, int k, int cols, const int* slot, const T* weight, const T* in, T* out,
                  cudaStream_t stream);
// The combine's backward (kernels/cpu/ops.hpp): rows[slot[s]] = weight[s] · dy[t] and dweight[s] =
// Σ_c dy[t][c] · out[slot[s]][c] for s = t·k + j (0 for a slot < 0); a block per slot, the dot product by
// the fixed tree.
template <class T>
void moe_gate_grad(int tokens, int k, int cols, const int* slot, const T* weight, const T* dy, const T* out, T* rows,
                   T* dweight, cudaStream_t stream);

// The workload's loss: d = out - target, dout = d / n, loss[0] = Σ d² / (2n), summed by one block in a
// fixed order (deterministic; not the CPU stage's order, so the bits may differ from it by rounding).
template <class T>
void mse_loss(int n, const T* out, const T* target, T* dout, T* loss, cudaStream_t stream);

}  // namespace pipesim::cuda
