// The non-GEMM operations of a transformer layer, forward and backward, on row-major [rows x cols] data:
// RMSNorm, softmax, top-k, SiLU/SwiGLU, elementwise add, and causal multi-head attention. Backward passes are split
// as the pipeline needs them: *_backward_input gives the input gradient (I), *_backward_weight the
// parameter gradient (W). The row-wise ops are one obvious loop each and serve as their own reference;
// attention's fast path runs through gemm on strided head slices, so it has a naive reference beside it.
#pragma once

namespace pipesim::kernels {

// y = x / sqrt(mean(x²) + eps) · weight, per row; rstd[row] = 1 / sqrt(mean(x²) + eps) is kept for backward.
template <class T>
void rmsnorm_forward(int rows, int cols, const T* x, const T* weight, T eps, T* y, T* rstd);
// dx = rstd · (dŷ - x̂ · mean(dŷ · x̂)) with x̂ = x · rstd and dŷ = dy · weight.
template <class T>
void rmsnorm_backward_input(int rows, int cols, const T* x, const T* weight, const T* rstd, const T* dy, T* dx);
// dweight += Σ_rows dy · x̂. The rows are summed first and then added, so the amount added does not depend
// on what dweight already holds.
template <class T>
void rmsnorm_backward_weight(int rows, int cols, const T* x, const T* rstd, const T* dy, T* dweight);

// Row-wise softmax; with `causal`, entry (i, j) with j > i is masked (probability exactly 0).
template <class T>
void softmax_forward(int rows, int cols, const T* x, T* y, bool causal);
// dx = y · (dy - Σ_j y·dy), per row; masked entries come out 0 because their y is. dx may alias dy.
template <class T>
void softmax_backward(int rows, int cols, const T* y, const T* dy, T* dx);

// Per row, the k largest entries in decreasing order (ties: the lower column first): index[row·k + j] and
// value[row·k + j]. Requires 1 <= k <= cols. The fast path selects k times; the reference stable-sorts.
template <class T>
void top_k(int rows, int cols, int k, const T* x, int* index, T* value);
template <class T>
void top_k_reference(int rows, int cols, int k, const T* x, int* index, T* value);

// silu(x) = x · sigmoid(x)
template <class T>
void silu_forward(int n, const T* x, T* y);
template <class T>
void silu_backward(int n, const T* x, const T* dy, T* dx);
// out = silu(gate) · up
template <class T>
void swiglu_forward(int n, const T* gate, const T* up, T* out);
// dgate or dup may alias dout.
template <class T>
void swiglu_backward(int n, const T* gate, const T* up, const T* dout, T* dgate, T* dup);

template <class T>
void add(int n, const T* a, const T* b, T* out);  // out = a + b (out may alias a or b)

// MoE token permutation, rows of `cols` elements. Gather: out[r] = in[source[r]] for r < rows (into the
// order the rows travel or the experts read them). Combine: out[t] = Σ_j weight[t·k + j] · in[slot[t·k + j]],
// j = 0..k-1 in order from zero, for t < tokens; a slot < 0 contributes nothing (a dropped token).
template <class T>
void gather_rows(int rows, int cols, const int* source, const T* in, T* out);
template <class T>
void combine_rows(int tokens, int k, int cols, const int* slot, const T* weight, const T* in, T* out);
// The combine's backward, for slot s = t·k + j whose expert output is row slot[s] of `out`: the gradient
// that goes back to the expert, rows[slot[s]] = weight[s] · dy[t], and the gate's, dweight[s] =
// Σ_c dy[t][c] · out[slot[s]][c] (c in order from zero); a slot < 0 (dropped) gets dweight 0 and no row.
template <class T>
void moe_gate_grad(int tokens, int k, int cols, const int* slot, const T* weight, const T* dy, const T* out, T* rows,
                   T* dweight);

// Causal self-attention. q, k, v and out are [batch·seq x heads·head_dim] (head h owns columns
// [h·head_dim, (h+1)·head_dim)); probs is [batch x heads x seq x seq], written by forward and read by
// backward. Scores are scaled by 1/sqrt(head_dim).
struct AttentionShape {
  int batch = 1, seq = 1, heads = 1, head_dim = 1;
  int rows() const { return batch * seq; }
  int width() const { return heads * head_dim; }
  int probs_size() const { return batch * heads * seq * seq; }
};
template <class T>
void attention_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* probs, T* out);
template <class T>
void attention_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* probs, const T* dout,
                        T* dq, T* dk, T* dv);
template <class T>
void attention_forward_reference(const AttentionShape& s, const T* q, const T* k, const T* v, T* probs, T* out);
template <class T>
void attention_backward_reference(const AttentionShape& s, const T* q, const T* k, const T* v, const T* probs,
                                  const T* dout, T* dq, T* dk, T* dv);

}  // namespace pipesim::kernels
