// C = alpha·op(A)·op(B) + beta·C on row-major matrices, float and double: a naive reference and a
// cache-blocked fast kernel. Both are deterministic (fixed summation order, no threads), and the fast one
// keeps the reference's order per element (p = 0..k-1, then alpha, then beta), so today they agree bit
// for bit; the contract promised to callers is only 1e-12 relative (double) plus determinism, plus one
// more: each row of C depends only on its own row of op(A), op(B) and C, never on m or the other rows, so
// a row computes the same bits however rows are batched (the workload's MoE experts rely on this).
#pragma once

namespace pipesim::kernels {

// The only contract between caller and kernel. op(A) is m x k, op(B) is k x n, C is m x n; lda/ldb/ldc
// are the row strides of the matrices as stored (A is stored k x m when trans_a). beta == 0 means C is
// not read (BLAS convention), so it may hold garbage.
template <class T>
struct GemmParams {
  int m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  T alpha = 1;
  const T* a = nullptr;
  int lda = 0;
  const T* b = nullptr;
  int ldb = 0;
  T beta = 0;
  T* c = nullptr;
  int ldc = 0;
};

template <class T>
void gemm_reference(const GemmParams<T>& p);
template <class T>
void gemm(const GemmParams<T>& p);

}  // namespace pipesim::kernels
