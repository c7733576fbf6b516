// Row-wise ops and causal attention (see ops.hpp). Every loop sums in a fixed order and nothing runs on
// threads, so equal inputs give bit-identical outputs on every call.
#include "kernels/cpu/ops.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "common/error.hpp"
#include "kernels/cpu/gemm.hpp"

namespace pipesim::kernels {
namespace {

using std::size_t;

template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

void check(const AttentionShape& s) {
  if (s.batch <= 0 || s.seq <= 0 || s.heads <= 0 || s.head_dim <= 0)
    throw Error(
        fmt::format("attention: bad shape (batch={} seq={} heads={} head_dim={})", s.batch, s.seq, s.heads, s.head_dim),
        Error::Kind::Internal);
}

// Offset of head h of batch element b in a [batch·seq x heads·head_dim] tensor, and of its probabilities.
size_t head_offset(const AttentionShape& s, int b, int h) {
  return size_t(b) * s.seq * s.width() + size_t(h) * s.head_dim;
}
void check_top_k(int rows, int cols, int k) {
  if (rows < 0 || k < 1 || k > cols)
    throw Error(fmt::format("top_k: bad shape (rows={} cols={} k={})", rows, cols, k), Error::Kind::Internal);
}

size_t probs_offset(const AttentionShape& s, int b, int h) { return (size_t(b) * s.heads + h) * s.seq * s.seq; }

}  // namespace

template <class T>
void rmsnorm_forward(int rows, int cols, const T* x, const T* weight, T eps, T* y, T* rstd) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + size_t(r) * cols;
    T squares = 0;
    for (int c = 0; c < cols; ++c) squares += xr[c] * xr[c];
    T rs = T(1) / std::sqrt(squares / T(cols) + eps);
    rstd[r] = rs;
    for (int c = 0; c < cols; ++c) y[size_t(r) * cols + c] = xr[c] * rs * weight[c];
  }
}

template <class T>
void rmsnorm_backward_input(int rows, int cols, const T* x, const T* weight, const T* rstd, const T* dy, T* dx) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + size_t(r) * cols;
    const T* dyr = dy + size_t(r) * cols;
    T rs = rstd[r], dot = 0;
    for (int c = 0; c < cols; ++c) dot += dyr[c] * weight[c] * (xr[c] * rs);
    T mean = dot / T(cols);
    for (int c = 0; c < cols; ++c) dx[size_t(r) * cols + c] = rs * (dyr[c] * weight[c] - xr[c] * rs * mean);
  }
}

template <class T>
void rmsnorm_backward_weight(int rows, int cols, const T* x, const T* rstd, const T* dy, T* dweight) {
  std::vector<T> sum(size_t(cols), T(0));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) sum[size_t(c)] += dy[size_t(r) * cols + c] * (x[size_t(r) * cols + c] * rstd[r]);
  for (int c = 0; c < cols; ++c) dweight[c] += sum[size_t(c)];
}

template <class T>
void softmax_forward(int rows, int cols, const T* x, T* y, bool causal) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + size_t(r) * cols;
    T* yr = y + size_t(r) * cols;
    int live = causal ? std::min(r + 1, cols) : cols;
    T top = xr[0];
    for (int c = 1; c < live; ++c) top = std::max(top, xr[c]);
    T total = 0;
    for (int c = 0; c < live; ++c) total += yr[c] = std::exp(xr[c] - top);
    for (int c = 0; c < live; ++c) yr[c] /= total;
    for (int c = live; c < cols; ++c) yr[c] = 0;
  }
}

template <class T>
void softmax_backward(int rows, int cols, const T* y, const T* dy, T* dx) {
  for (int r = 0; r < rows; ++r) {
    const T* yr = y + size_t(r) * cols;
    const T* dyr = dy + size_t(r) * cols;
    T dot = 0;
    for (int c = 0; c < cols; ++c) dot += yr[c] * dyr[c];
    for (int c = 0; c < cols; ++c) dx[size_t(r) * cols + c] = yr[c] * (dyr[c] - dot);  // dx may alias dy
  }
}

template <class T>
void top_k(int rows, int cols, int k, const T* x, int* index, T* value) {
  check_top_k(rows, cols, k);
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + size_t(r) * cols;
    int* ir = index + size_t(r) * k;
    for (int j = 0; j < k; ++j) {
      // The first column (lowest index) beating everything chosen so far; strict > keeps ties in index order.
      int best = -1;
      for (int c = 0; c < cols; ++c) {
        if (std::find(ir, ir + j, c) != ir + j) continue;
        if (best < 0 || xr[c] > xr[best]) best = c;
      }
      ir[j] = best;
      value[size_t(r) * k + j] = xr[best];
    }
  }
}

template <class T>
void top_k_reference(int rows, int cols, int k, const T* x, int* index, T* value) {
  check_top_k(rows, cols, k);
  std::vector<int> order(static_cast<size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + size_t(r) * cols;
    for (int c = 0; c < cols; ++c) order[size_t(c)] = c;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return xr[a] > xr[b]; });
    for (int j = 0; j < k; ++j) {
      index[size_t(r) * k + j] = order[size_t(j)];
      value[size_t(r) * k + j] = xr[order[size_t(j)]];
    }
  }
}

template <class T>
void silu_forward(int n, const T* x, T* y) {
  for (int i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}

template <class T>
void silu_backward(int n, const T* x, const T* dy, T* dx) {
  for (int i = 0; i < n; ++i) {
    T s = sigmoid(x[i]);
    dx[i] = dy[i] * (s * (T(1) + x[i] * (T(1) - s)));
  }
}

template <class T>
void swiglu_forward(int n, const T* gate, const T* up, T* out) {
  for (int i = 0; i < n; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

template <class T>
void swiglu_backward(int n, const T* gate, const T* up, const T* dout, T* dgate, T* dup) {
  for (int i = 0; i < n; ++i) {
    T s = sigmoid(gate[i]);
    T g = dout[i];  // read before writing: dgate or dup may alias dout
    dup[i] = g * (gate[i] * s);
    dgate[i] = g * up[i] * (s * (T(1) + gate[i] * (T(1) - s)));
  }
}

template <class T>
void add(int n, const T* a, const T* b, T* out) {
  for (int i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T>
void attention_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* probs, T* out) {
  check(s);
  const int S = s.seq, D = s.head_dim, W = s.width();
  const T scale = T(1) / std::sqrt(T(D));
  thread_local std::vector<T> scores;
  scores.resize(size_t(S) * S);
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h) {
      size_t at = head_offset(s, b, h);
      T* p = probs + probs_offset(s, b, h);
      // The masked upper triangle is computed and then dropped: simpler than a triangular GEMM at this size.
      gemm<T>({.m = S,
               .n = S,
               .k = D,
               .trans_b = true,
               .alpha = scale,
               .a = q + at,
               .lda = W,
               .b = k + at,
               .ldb = W,
               .c = scores.data(),
               .ldc = S});
      softmax_forward(S, S, scores.data(), p, true);
      gemm<T>({.m = S, .n = D, .k = S, .a = p, .lda = S, .b = v + at, .ldb = W, .c = out + at, .ldc = W});
    }
}

template <class T>
void attention_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* probs, const T* dout,
                        T* dq, T* dk, T* dv) {
  check(s);
  const int S = s.seq, D = s.head_dim, W = s.width();
  const T scale = T(1) / std::sqrt(T(D));
  thread_local std::vector<T> dscores;
  dscores.resize(size_t(S) * S);
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h) {
      size_t at = head_offset(s, b, h);
      const T* p = probs + probs_offset(s, b, h);
      T* ds = dscores.data();
      gemm<T>({.m = S,
               .n = S,
               .k = D,
               .trans_b = true,
               .a = dout + at,
               .lda = W,
               .b = v + at,
               .ldb = W,
               .c = ds,
               .ldc = S});
      softmax_backward(S, S, p, ds, ds);
      gemm<T>(
          {.m = S, .n = D, .k = S, .alpha = scale, .a = ds, .lda = S, .b = k + at, .ldb = W, .c = dq + at, .ldc = W});
      gemm<T>({.m = S,
               .n = D,
               .k = S,
               .trans_a = true,
               .alpha = scale,
               .a = ds,
               .lda = S,
               .b = q + at,
               .ldb = W,
               .c = dk + at,
               .ldc = W});
      gemm<T>({.m = S,
               .n = D,
               .k = S,
               .trans_a = true,
               .a = p,
               .lda = S,
               .b = dout + at,
               .ldb = W,
               .c = dv + at,
               .ldc = W});
    }
}

template <class T>
void attention_forward_reference(const AttentionShape& s, const T* q, const T* k, const T* v, T* probs, T* out) {
  check(s);
  const int S = s.seq, D = s.head_dim, W = s.width();
  const T scale = T(1) / std::sqrt(T(D));
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h) {
      size_t at = head_offset(s, b, h);
      T* p = probs + probs_offset(s, b, h);
      auto Q = [&](int i, int d) { return q[at + size_t(i) * W + d]; };
      auto K = [&](int i, int d) { return k[at + size_t(i) * W + d]; };
      auto V = [&](int i, int d) { return v[at + size_t(i) * W + d]; };
      for (int i = 0; i < S; ++i) {
        T* row = p + size_t(i) * S;
        for (int j = 0; j < S; ++j) {
          T dot = 0;
          for (int d = 0; d < D; ++d) dot += Q(i, d) * K(j, d);
          row[j] = scale * dot;
        }
        T top = row[0], total = 0;
        for (int j = 1; j <= i; ++j) top = std::max(top, row[j]);
        for (int j = 0; j <= i; ++j) total += row[j] = std::exp(row[j] - top);
        for (int j = 0; j < S; ++j) row[j] = j <= i ? row[j] / total : T(0);
        for (int d = 0; d < D; ++d) {
          T sum = 0;
          for (int j = 0; j <= i; ++j) sum += row[j] * V(j, d);
          out[at + size_t(i) * W + d] = sum;
        }
      }
    }
}

template <class T>
void attention_backward_reference(const AttentionShape& s, const T* q, const T* k, const T* v, const T* probs,
                                  const T* dout, T* dq, T* dk, T* dv) {
  check(s);
  const int S = s.seq, D = s.head_dim, W = s.width();
  const T scale = T(1) / std::sqrt(T(D));
  std::vector<T> ds(size_t(S) * S);
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h) {
      size_t at = head_offset(s, b, h);
      const T* p = probs + probs_offset(s, b, h);
      auto P = [&](int i, int j) { return p[size_t(i) * S + j]; };
      auto at_row = [&](int i, int d) { return at + size_t(i) * W + d; };
      for (int i = 0; i < S; ++i) {
        T dot = 0;
        for (int j = 0; j < S; ++j) {
          T dp = 0;
          for (int d = 0; d < D; ++d) dp += dout[at_row(i, d)] * v[at_row(j, d)];
          ds[size_t(i) * S + j] = dp;
          dot += P(i, j) * dp;
        }
        for (int j = 0; j < S; ++j) ds[size_t(i) * S + j] = P(i, j) * (ds[size_t(i) * S + j] - dot);
      }
      for (int i = 0; i < S; ++i)
        for (int d = 0; d < D; ++d) {
          T sq = 0, sk = 0, sv = 0;
          for (int j = 0; j < S; ++j) {
            sq += ds[size_t(i) * S + j] * k[at_row(j, d)];
            sk += ds[size_t(j) * S + i] * q[at_row(j, d)];
            sv += P(j, i) * dout[at_row(j, d)];
          }
          dq[at_row(i, d)] = scale * sq;
          dk[at_row(i, d)] = scale * sk;
          dv[at_row(i, d)] = sv;
        }
    }
}

template <class T>
void gather_rows(int rows, int cols, const int* source, const T* in, T* out) {
  for (int r = 0; r < rows; ++r)
    std::copy_n(in + size_t(source[r]) * size_t(cols), cols, out + size_t(r) * size_t(cols));
}

template <class T>
void combine_rows(int tokens, int k, int cols, const int* slot, const T* weight, const T* in, T* out) {
  for (int t = 0; t < tokens; ++t) {
    T* o = out + size_t(t) * size_t(cols);
    std::fill_n(o, cols, T(0));
    for (int j = 0; j < k; ++j) {
      const int from = slot[size_t(t) * size_t(k) + size_t(j)];
      if (from < 0) continue;
      const T w = weight[size_t(t) * size_t(k) + size_t(j)];
      const T* x = in + size_t(from) * size_t(cols);
      for (int c = 0; c < cols; ++c) o[c] += w * x[c];
    }
  }
}

template <class T>
void moe_gate_grad(int tokens, int k, int cols, const int* slot, const T* weight, const T* dy, const T* out, T* rows,
                   T* dweight) {
  for (int t = 0; t < tokens; ++t)
    for (int j = 0; j < k; ++j) {
      const size_t s = size_t(t) * size_t(k) + size_t(j);
      if (slot[s] < 0) {  // a dropped token: no row, no gradient
        dweight[s] = 0;
        continue;
      }
      const size_t at = size_t(slot[s]) * size_t(cols);
      const T* d = dy + size_t(t) * size_t(cols);
      const T w = weight[s];
      T dot = 0;
      for (int c = 0; c < cols; ++c) {
        dot += d[c] * out[at + size_t(c)];
        rows[at + size_t(c)] = w * d[c];
      }
      dweight[s] = dot;
    }
}

#define PIPESIM_OPS_INSTANTIATE(T)                                                                                     \
  template void rmsnorm_forward<T>(int, int, const T*, const T*, T, T*, T*);                                           \
  template void rmsnorm_backward_input<T>(int, int, const T*, const T*, const T*, const T*, T*);                       \
  template void rmsnorm_backward_weight<T>(int, int, const T*, const T*, const T*, T*);                                \
  template void softmax_forward<T>(int, int, const T*, T*, bool);                                                      \
  template void softmax_backward<T>(int, int, const T*, const T*, T*);                                                 \
  template void top_k<T>(int, int, int, const T*, int*, T*);                                                          \
  template void top_k_reference<T>(int, int, int, const T*, int*, T*);                                                \
  template void silu_forward<T>(int, const T*, T*);                                                                    \
  template void silu_backward<T>(int, const T*, const T*, T*);                                                         \
  template void swiglu_forward<T>(int, const T*, const T*, T*);                                                        \
  template void swiglu_backward<T>(int, const T*, const T*, const T*, T*, T*);                                         \
  template void add<T>(int, const T*, const T*, T*);                                                                   \
  template void gather_rows<T>(int, int, const int*, const T*, T*);                                                    \
  template void combine_rows<T>(int, int, int, const int*, const T*, const T*, T*);                                    \
  template void moe_gate_grad<T>(int, int, int, const int*, const T*, const T*, const T*, T*, T*);                     \
  template void attention_forward<T>(const AttentionShape&, const T*, const T*, const T*, T*, T*);                     \
  template void attention_backward<T>(const AttentionShape&, const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                      T*);                                                                             \
  template void attention_forward_reference<T>(const AttentionShape&, const T*, const T*, const T*, T*, T*);           \
  template void attention_backward_reference<T>(const AttentionShape&, const T*, const T*, const T*, const T*,         \
                                                const T*, T*, T*, T*);
PIPESIM_OPS_INSTANTIATE(float)
PIPESIM_OPS_INSTANTIATE(double)
#undef PIPESIM_OPS_INSTANTIATE

}  // namespace pipesim::kernels
