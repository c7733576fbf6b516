// Naive and cache-blocked GEMM (see gemm.hpp). The fast kernel copies a block of op(A) and a panel of op(B)
// into contiguous buffers, so a transpose costs one copy instead of a strided inner loop, then accumulates
// four rows of C at a time with the column loop innermost, which the compiler vectorizes. Each element's
// sum still runs over k in increasing order, which is what keeps it equal to the reference.
#include "kernels/cpu/gemm.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "common/error.hpp"

namespace pipesim::kernels {
namespace {

// Four accumulator rows and one packed B row (NC doubles each, 2 KiB) stay in L1 through the inner sweep;
// the packed B panel (KC x NC doubles, 256 KiB) stays in L2 while every row block of A streams past it.
constexpr int MC = 64, KC = 128, NC = 256;

template <class T>
void check(const GemmParams<T>& p) {
  auto fail = [&](const char* what) {
    throw Error(fmt::format("gemm: {} (m={} n={} k={} trans_a={} trans_b={} lda={} ldb={} ldc={})", what, p.m, p.n, p.k,
                            p.trans_a, p.trans_b, p.lda, p.ldb, p.ldc),
                Error::Kind::Internal);
  };
  if (p.m < 0 || p.n < 0 || p.k < 0) fail("negative size");
  if (p.lda < std::max(1, p.trans_a ? p.m : p.k)) fail("lda smaller than a row of A");
  if (p.ldb < std::max(1, p.trans_b ? p.k : p.n)) fail("ldb smaller than a row of B");
  if (p.ldc < std::max(1, p.n)) fail("ldc smaller than a row of C");
  if (p.m > 0 && p.n > 0 && !p.c) fail("null C");
  if (p.m > 0 && p.n > 0 && p.k > 0 && (!p.a || !p.b)) fail("null A or B");
}

template <class T>
T element_a(const GemmParams<T>& p, int i, int q) {
  return p.trans_a ? p.a[std::size_t(q) * p.lda + i] : p.a[std::size_t(i) * p.lda + q];
}
template <class T>
T element_b(const GemmParams<T>& p, int q, int j) {
  return p.trans_b ? p.b[std::size_t(j) * p.ldb + q] : p.b[std::size_t(q) * p.ldb + j];
}

// The one place alpha and beta are applied, shared by both kernels so they round identically.
template <class T>
void store(const GemmParams<T>& p, int i, int j, T sum) {
  T& c = p.c[std::size_t(i) * p.ldc + j];
  c = p.beta == T(0) ? p.alpha * sum : p.alpha * sum + p.beta * c;
}

// restrict: the rows of the tile and the B panel never overlap, and saying so lets the loop vectorize
// without runtime alias checks.
template <class T>
void rows4(int n, T a0, T a1, T a2, T a3, const T* __restrict__ b, T* __restrict__ c0, T* __restrict__ c1,
           T* __restrict__ c2, T* __restrict__ c3) {
  for (int j = 0; j < n; ++j) {
    T bj = b[j];
    c0[j] += a0 * bj;
    c1[j] += a1 * bj;
    c2[j] += a2 * bj;
    c3[j] += a3 * bj;
  }
}
template <class T>
void rows1(int n, T a0, const T* __restrict__ b, T* __restrict__ c0) {
  for (int j = 0; j < n; ++j) c0[j] += a0 * b[j];
}

// tile[mb x nb] += a_pack[mb x kb] · b_pack[kb x nb]
template <class T>
void accumulate(int mb, int nb, int kb, const T* a_pack, const T* b_pack, T* tile) {
  int i = 0;
  for (; i + 4 <= mb; i += 4) {
    const T* a = a_pack + std::size_t(i) * kb;
    T* c = tile + std::size_t(i) * nb;
    for (int q = 0; q < kb; ++q)
      rows4(nb, a[q], a[kb + q], a[2 * kb + q], a[3 * kb + q], b_pack + std::size_t(q) * nb, c, c + nb, c + 2 * nb,
            c + 3 * nb);
  }
  for (; i < mb; ++i)
    for (int q = 0; q < kb; ++q)
      rows1(nb, a_pack[std::size_t(i) * kb + q], b_pack + std::size_t(q) * nb, tile + std::size_t(i) * nb);
}

}  // namespace

template <class T>
void gemm_reference(const GemmParams<T>& p) {
  check(p);
  for (int i = 0; i < p.m; ++i)
    for (int j = 0; j < p.n; ++j) {
      T sum = 0;
      for (int q = 0; q < p.k; ++q) sum += element_a(p, i, q) * element_b(p, q, j);
      store(p, i, j, sum);
    }
}

template <class T>
void gemm(const GemmParams<T>& p) {
  check(p);
  if (p.m == 0 || p.n == 0) return;
  // Grown once per thread and reused: the workload calls this thousands of times on tiny matrices.
  thread_local std::vector<T> a_pack, b_pack, tile;
  a_pack.resize(std::size_t(std::min(MC, p.m)) * std::min(KC, p.k));
  b_pack.resize(std::size_t(std::min(KC, p.k)) * std::min(NC, p.n));
  tile.resize(std::size_t(std::min(MC, p.m)) * std::min(NC, p.n));
  for (int jc = 0; jc < p.n; jc += NC) {
    int nb = std::min(NC, p.n - jc);
    for (int ic = 0; ic < p.m; ic += MC) {
      int mb = std::min(MC, p.m - ic);
      std::fill_n(tile.begin(), std::size_t(mb) * nb, T(0));
      for (int pc = 0; pc < p.k; pc += KC) {
        int kb = std::min(KC, p.k - pc);
        for (int q = 0; q < kb; ++q)
          for (int j = 0; j < nb; ++j) b_pack[std::size_t(q) * nb + j] = element_b(p, pc + q, jc + j);
        for (int i = 0; i < mb; ++i)
          for (int q = 0; q < kb; ++q) a_pack[std::size_t(i) * kb + q] = element_a(p, ic + i, pc + q);
        accumulate(mb, nb, kb, a_pack.data(), b_pack.data(), tile.data());
      }
      for (int i = 0; i < mb; ++i)
        for (int j = 0; j < nb; ++j) store(p, ic + i, jc + j, tile[std::size_t(i) * nb + j]);
    }
  }
}

template void gemm_reference<float>(const GemmParams<float>&);
template void gemm_reference<double>(const GemmParams<double>&);
template void gemm<float>(const GemmParams<float>&);
template void gemm<double>(const GemmParams<double>&);

}  // namespace pipesim::kernels
