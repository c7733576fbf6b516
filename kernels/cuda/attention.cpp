// Causal attention on the GPU (see attention.hpp): the CPU kernel's five GEMMs per (batch, head), batched
// over the heads of each batch element. Head h of element b starts at element b·seq·width + h·head_dim,
// with row stride width; its score matrix at (b·heads + h)·seq².
#include "kernels/cuda/attention.hpp"

#include <cmath>

#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cuda/ops.hpp"

namespace pipesim::cuda {
namespace {

void check_shape(const AttentionShape& s) {
  if (s.batch <= 0 || s.seq <= 0 || s.heads <= 0 || s.head_dim <= 0)
    throw Error(fmt::format("attention: bad shape (batch={} seq={} heads={} head_dim={})", s.batch, s.seq, s.heads,
                            s.head_dim),
                Error::Kind::Internal);
}

struct Layout {
  int S, D, W;
  long long element, probs;  // one batch element's start in the [rows x width] tensors and in probs
};

Layout layout(const AttentionShape& s, int b) {
  return {s.seq, s.head_dim, s.width(), static_cast<long long>(b) * s.seq * s.width(),
          static_cast<long long>(b) * s.heads * s.seq * s.seq};
}

// From one head to the next: head_dim along the tensors, seq² along the score matrices.
BatchStrides over_heads(const AttentionShape& s, const Layout& l, bool a_probs, bool b_probs, bool c_probs) {
  long long scores = static_cast<long long>(l.S) * l.S;
  return {.batch = s.heads, .a = a_probs ? scores : l.D, .b = b_probs ? scores : l.D, .c = c_probs ? scores : l.D};
}

}  // namespace

template <class T>
void attention_forward(Blas& blas, const AttentionShape& s, const T* q, const T* k, const T* v, T* probs, T* out,
                       cudaStream_t stream) {
  check_shape(s);
  const T scale = T(1) / std::sqrt(T(s.head_dim));
  for (int b = 0; b < s.batch; ++b) {
    auto l = layout(s, b);
    // The masked upper triangle is computed and then dropped, as on the CPU.
    gemm_batched<T>(blas,
                    {.m = l.S, .n = l.S, .k = l.D, .trans_b = true, .alpha = scale, .a = q + l.element, .lda = l.W,
                     .b = k + l.element, .ldb = l.W, .c = probs + l.probs, .ldc = l.S},
                    over_heads(s, l, false, false, true), stream);
  }
  attention_softmax_forward(s.batch * s.heads * s.seq, s.seq, probs, stream);
  for (int b = 0; b < s.batch; ++b) {
    auto l = layout(s, b);
    gemm_batched<T>(blas,
                    {.m = l.S, .n = l.D, .k = l.S, .a = probs + l.probs, .lda = l.S, .b = v + l.element, .ldb = l.W,
                     .c = out + l.element, .ldc = l.W},
                    over_heads(s, l, true, false, false), stream);
  }
}

template <class T>
void attention_backward(Blas& blas, const AttentionShape& s, const T* q, const T* k, const T* v, const T* probs,
                        const T* dout, T* dq, T* dk, T* dv, T* scratch, cudaStream_t stream) {
  check_shape(s);
  const T scale = T(1) / std::sqrt(T(s.head_dim));
  for (int b = 0; b < s.batch; ++b) {
    auto l = layout(s, b);
    gemm_batched<T>(blas,
                    {.m = l.S, .n = l.S, .k = l.D, .trans_b = true, .a = dout + l.element, .lda = l.W,
                     .b = v + l.element, .ldb = l.W, .c = scratch + l.probs, .ldc = l.S},
                    over_heads(s, l, false, false, true), stream);
  }
  softmax_backward(s.batch * s.heads * s.seq, s.seq, probs, scratch, scratch, stream);
  for (int b = 0; b < s.batch; ++b) {
    auto l = layout(s, b);
    const T* ds = scratch + l.probs;
    gemm_batched<T>(blas,
                    {.m = l.S, .n = l.D, .k = l.S, .alpha = scale, .a = ds, .lda = l.S, .b = k + l.element, .ldb = l.W,
                     .c = dq + l.element, .ldc = l.W},
                    over_heads(s, l, true, false, false), stream);
    gemm_batched<T>(blas,
                    {.m = l.S, .n = l.D, .k = l.S, .trans_a = true, .alpha = scale, .a = ds, .lda = l.S,
                     .b = q + l.element, .ldb = l.W, .c = dk + l.element, .ldc = l.W},
                    over_heads(s, l, true, false, false), stream);
    gemm_batched<T>(blas,
                    {.m = l.S, .n = l.D, .k = l.S, .trans_a = true, .a = probs + l.probs, .lda = l.S,
                     .b = dout + l.element, .ldb = l.W, .c = dv + l.element, .ldc = l.W},
                    over_heads(s, l, true, false, false), stream);
  }
}

template void attention_forward<float>(Blas&, const AttentionShape&, const float*, const float*, const float*, float*,
                                       float*, cudaStream_t);
template void attention_forward<double>(Blas&, const AttentionShape&, const double*, const double*, const double*,
                                        double*, double*, cudaStream_t);
template void attention_backward<float>(Blas&, const AttentionShape&, const float*, const float*, const float*,
                                        const float*, const float*, float*, float*, float*, float*, cudaStream_t);
template void attention_backward<double>(Blas&, const AttentionShape&, const double*, const double*, const double*,
                                         const double*, const double*, double*, double*, double*, double*, cudaStream_t);

}  // namespace pipesim::cuda
