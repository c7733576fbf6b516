// The CPU kernels against their references: the fast GEMM on many shapes and transposes (block edges
// included) in float and double, and its determinism; attention's fast path against its naive loops; and
// every backward pass against central finite differences in double.
#include <gtest/gtest.h>

#include "common/numeric.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "common/error.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/ops.hpp"

namespace pipesim::kernels {
namespace {

template <class T = double>
std::vector<T> random_vector(std::size_t size, std::uint64_t seed, double scale = 1.0) {
  std::mt19937_64 gen(seed);  // raw engine output is specified by the standard; distributions are not
  std::vector<T> v(size);
  for (auto& x : v) x = T(scale * (double(gen() >> 11) * 0x1p-53 * 2.0 - 1.0));
  return v;
}


// dL/dx by fourth-order central differences, loss() reading x. Truncation O(h⁴) lets h be large enough
// that rounding in the loss (divided by h) stays far below the 1e-6 the checks ask for.
std::vector<double> numeric_gradient(const std::function<double()>& loss, std::vector<double>& x) {
  const double h = 1e-3;
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    double keep = x[i];
    auto at = [&](double offset) {
      x[i] = keep + offset;
      return loss();
    };
    g[i] = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
    x[i] = keep;
  }
  return g;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

struct Shape {
  int m, n, k;
};
// Around every block edge of the fast kernel (MC 64, KC 128, NC 256) and its 4-row micro-kernel.
const Shape kShapes[] = {{1, 1, 1},    {1, 7, 3},     {3, 5, 7},      {4, 4, 4},      {5, 9, 1},      {17, 33, 9},
                         {16, 32, 64}, {63, 65, 127}, {64, 256, 128}, {65, 257, 129}, {70, 260, 140}, {2, 300, 5},
                         {130, 3, 2},  {0, 4, 4},     {4, 0, 4},      {4, 4, 0}};

template <class T>
void check_gemm_against_reference(double tolerance) {
  std::uint64_t seed = 1;
  for (auto [m, n, k] : kShapes)
    for (int trans = 0; trans < 4; ++trans)
      for (auto [alpha, beta] : {std::pair{1.0, 0.0}, {0.5, 2.0}, {-1.5, 1.0}}) {
        bool ta = trans & 1, tb = trans & 2;
        int a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
        int lda = a_cols + 3, ldb = b_cols + 1, ldc = n + 2;  // strides wider than rows, as for head slices
        auto a = random_vector<T>(std::size_t(std::max(a_rows, 1)) * lda, seed++);
        auto b = random_vector<T>(std::size_t(std::max(b_rows, 1)) * ldb, seed++);
        auto c0 = random_vector<T>(std::size_t(std::max(m, 1)) * ldc, seed++);
        auto fast = c0, ref = c0;
        GemmParams<T> p{m, n, k, ta, tb, T(alpha), a.data(), lda, b.data(), ldb, T(beta), nullptr, ldc};
        p.c = fast.data();
        gemm(p);
        p.c = ref.data();
        gemm_reference(p);
        // Per element, against the rounding bound |alpha|·Σ|a||b| + |beta||c|, which cancellation cannot shrink.
        std::vector<T> abs_a(a.size()), abs_b(b.size()), bound(c0.size());
        std::transform(a.begin(), a.end(), abs_a.begin(), [](T x) { return std::abs(x); });
        std::transform(b.begin(), b.end(), abs_b.begin(), [](T x) { return std::abs(x); });
        std::transform(c0.begin(), c0.end(), bound.begin(), [&](T x) { return T(std::abs(beta) * std::abs(x)); });
        GemmParams<T> q{m,  n, k, ta, tb, T(std::abs(alpha)), abs_a.data(), lda, abs_b.data(), ldb, T(1), bound.data(),
                        ldc};
        gemm_reference(q);
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < ldc; ++j) {
            std::size_t at = std::size_t(i) * ldc + j;
            if (j >= n) {
              ASSERT_EQ(fast[at], c0[at]) << "wrote past column n";
              continue;
            }
            ASSERT_LE(std::abs(double(fast[at]) - double(ref[at])), tolerance * double(bound[at]) + 1e-300)
                << "m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb << " alpha=" << alpha
                << " beta=" << beta << " at (" << i << "," << j << ")";
          }
      }
}

TEST(Gemm, FastMatchesReferenceDouble) { check_gemm_against_reference<double>(1e-12); }
TEST(Gemm, FastMatchesReferenceFloat) { check_gemm_against_reference<float>(1e-5); }

TEST(Gemm, BetaZeroIgnoresGarbageInC) {
  auto a = random_vector(6, 1), b = random_vector(6, 2);
  std::vector<double> c(4, std::nan("")), ref(4, std::nan(""));
  gemm<double>({.m = 2, .n = 2, .k = 3, .a = a.data(), .lda = 3, .b = b.data(), .ldb = 2, .c = c.data(), .ldc = 2});
  gemm_reference<double>(
      {.m = 2, .n = 2, .k = 3, .a = a.data(), .lda = 3, .b = b.data(), .ldb = 2, .c = ref.data(), .ldc = 2});
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(std::isnan(c[i]));
    EXPECT_EQ(c[i], ref[i]);
  }
}

// Same inputs, same bits: whatever ran before (the kernel keeps scratch buffers) and wherever C lives.
TEST(Gemm, Deterministic) {
  const int m = 70, n = 90, k = 150;
  auto a = random_vector(std::size_t(k) * m, 3), b = random_vector(std::size_t(n) * k, 4);
  auto run = [&](std::size_t offset) {
    std::vector<double> c(offset + std::size_t(m) * n);
    gemm<double>({.m = m,
                  .n = n,
                  .k = k,
                  .trans_a = true,
                  .trans_b = true,
                  .a = a.data(),
                  .lda = m,
                  .b = b.data(),
                  .ldb = k,
                  .c = c.data() + offset,
                  .ldc = n});
    return std::vector<double>(c.begin() + std::ptrdiff_t(offset), c.end());
  };
  auto first = run(0);
  auto big = random_vector(300 * 300, 5);
  std::vector<double> sink(300 * 300);
  gemm<double>({.m = 300,
                .n = 300,
                .k = 300,
                .a = big.data(),
                .lda = 300,
                .b = big.data(),
                .ldb = 300,
                .c = sink.data(),
                .ldc = 300});
  EXPECT_EQ(run(1), first);
  EXPECT_EQ(run(3), first);
}

// Each row of C is computed the same whatever rows are batched with it (the MoE experts rely on it): a
// row alone, or at any position of a batch whose size crosses the 4-row and block edges, gives the same bits.
TEST(Gemm, RowsDoNotDependOnTheirBatch) {
  const int n = 37, k = 150, m = 71;
  auto a = random_vector(std::size_t(m) * k, 6), b = random_vector(std::size_t(n) * k, 7);
  for (bool tb : {false, true}) {
    auto product = [&](int rows, const double* a_rows) {
      std::vector<double> c(std::size_t(rows) * n);
      gemm<double>({.m = rows,
                    .n = n,
                    .k = k,
                    .trans_b = tb,
                    .a = a_rows,
                    .lda = k,
                    .b = b.data(),
                    .ldb = tb ? k : n,
                    .c = c.data(),
                    .ldc = n});
      return c;
    };
    auto all = product(m, a.data());
    for (int i = 0; i < m; ++i) {
      auto alone = product(1, a.data() + std::size_t(i) * k);
      ASSERT_TRUE(std::equal(alone.begin(), alone.end(), all.begin() + std::ptrdiff_t(i) * n)) << "row " << i;
    }
  }
}

TEST(Gemm, RefusesBadParameters) {
  std::vector<double> x(16);
  auto expect_internal = [](auto&& call) {
    try {
      call();
      ADD_FAILURE() << "no throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), Error::Kind::Internal);
    }
  };
  expect_internal([&] {
    gemm<double>({.m = -1, .n = 2, .k = 2, .a = x.data(), .lda = 2, .b = x.data(), .ldb = 2, .c = x.data(), .ldc = 2});
  });
  expect_internal([&] {
    gemm<double>({.m = 2, .n = 2, .k = 3, .a = x.data(), .lda = 2, .b = x.data(), .ldb = 2, .c = x.data(), .ldc = 2});
  });
  expect_internal([&] {
    gemm<double>({.m = 2, .n = 2, .k = 2, .a = x.data(), .lda = 2, .b = x.data(), .ldb = 2, .c = x.data(), .ldc = 1});
  });
}

TEST(Softmax, RowsSumToOneAndMaskIsExact) {
  const int rows = 5, cols = 5;
  auto x = random_vector(rows * cols, 6, 30.0);  // large scores: the max shift must keep exp finite
  std::vector<double> y(x.size());
  softmax_forward(rows, cols, x.data(), y.data(), true);
  for (int r = 0; r < rows; ++r) {
    double sum = 0;
    for (int c = 0; c < cols; ++c) {
      if (c > r) {
        EXPECT_EQ(y[std::size_t(r * cols + c)], 0.0);
      }
      sum += y[std::size_t(r * cols + c)];
    }
    EXPECT_NEAR(sum, 1.0, 1e-15);
  }
}

// Ties go to the lower column; equal to a stable sort, rows of ties and k = cols included.
TEST(TopK, MatchesStableSort) {
  const int rows = 40, cols = 7;
  auto x = random_vector(std::size_t(rows) * cols, 8);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::round(x[i] * 2);  // few values: many ties
  for (int k = 1; k <= cols; ++k) {
    std::vector<int> index(std::size_t(rows) * k), ref_index(index.size());
    std::vector<double> value(index.size()), ref_value(index.size());
    top_k(rows, cols, k, x.data(), index.data(), value.data());
    top_k_reference(rows, cols, k, x.data(), ref_index.data(), ref_value.data());
    EXPECT_EQ(index, ref_index) << "k=" << k;
    EXPECT_EQ(value, ref_value) << "k=" << k;
  }
  std::vector<double> tied{1, 3, 3, 2, 3};
  std::vector<int> index(3);
  std::vector<double> value(3);
  top_k(1, 5, 3, tied.data(), index.data(), value.data());
  EXPECT_EQ(index, (std::vector<int>{1, 2, 4}));
  EXPECT_THROW(top_k(1, 5, 6, tied.data(), index.data(), value.data()), Error);
}

TEST(GradCheck, Softmax) {
  for (bool causal : {false, true}) {
    const int rows = 4, cols = 6;
    auto x = random_vector(rows * cols, 7, 2.0), weights = random_vector(rows * cols, 8);
    std::vector<double> y(x.size()), dx(x.size());
    auto loss = [&] {
      softmax_forward(rows, cols, x.data(), y.data(), causal);
      return dot(y, weights);
    };
    loss();
    softmax_backward(rows, cols, y.data(), weights.data(), dx.data());
    EXPECT_LT(relative_error(dx, numeric_gradient(loss, x)), 1e-6) << "causal=" << causal;
  }
}

TEST(GradCheck, RmsNorm) {
  const int rows = 3, cols = 8;
  auto x = random_vector(rows * cols, 9), weight = random_vector(cols, 10, 0.5), r = random_vector(rows * cols, 11);
  for (auto& w : weight) w += 1;
  std::vector<double> y(x.size()), rstd(rows), dx(x.size()), dweight(cols, 0.0);
  auto loss = [&] {
    rmsnorm_forward(rows, cols, x.data(), weight.data(), 1e-5, y.data(), rstd.data());
    return dot(y, r);
  };
  loss();
  rmsnorm_backward_input(rows, cols, x.data(), weight.data(), rstd.data(), r.data(), dx.data());
  rmsnorm_backward_weight(rows, cols, x.data(), rstd.data(), r.data(), dweight.data());
  EXPECT_LT(relative_error(dx, numeric_gradient(loss, x)), 1e-6);
  EXPECT_LT(relative_error(dweight, numeric_gradient(loss, weight)), 1e-6);
  // The weight gradient accumulates, adding the same amount whatever was there.
  auto again = dweight;
  rmsnorm_backward_weight(rows, cols, x.data(), rstd.data(), r.data(), again.data());
  for (int c = 0; c < cols; ++c) EXPECT_EQ(again[std::size_t(c)], dweight[std::size_t(c)] + dweight[std::size_t(c)]);
}

TEST(GradCheck, SiluAndSwiGlu) {
  const int n = 20;
  auto gate = random_vector(n, 12, 4.0), up = random_vector(n, 13), r = random_vector(n, 14);
  std::vector<double> out(n), dgate(n), dup(n), dx(n);
  auto silu_loss = [&] {
    silu_forward(n, gate.data(), out.data());
    return dot(out, r);
  };
  silu_backward(n, gate.data(), r.data(), dx.data());
  EXPECT_LT(relative_error(dx, numeric_gradient(silu_loss, gate)), 1e-6);
  auto loss = [&] {
    swiglu_forward(n, gate.data(), up.data(), out.data());
    return dot(out, r);
  };
  swiglu_backward(n, gate.data(), up.data(), r.data(), dgate.data(), dup.data());
  EXPECT_LT(relative_error(dgate, numeric_gradient(loss, gate)), 1e-6);
  EXPECT_LT(relative_error(dup, numeric_gradient(loss, up)), 1e-6);
}

TEST(Ops, Add) {
  std::vector<double> a{1, 2, 3}, b{0.5, -2, 4}, out(3);
  add(3, a.data(), b.data(), out.data());
  EXPECT_EQ(out, (std::vector<double>{1.5, 0, 7}));
  add(3, a.data(), b.data(), a.data());  // in place
  EXPECT_EQ(a, out);
}

TEST(Ops, GatherAndCombineRowsByHand) {
  // Three tokens of two columns, two slots each; slot (1, 1) dropped.
  std::vector<double> in{1, 2, 3, 4, 5, 6};
  std::vector<int> source{2, 0, 2, 1};
  std::vector<double> gathered(8);
  gather_rows(4, 2, source.data(), in.data(), gathered.data());
  EXPECT_EQ(gathered, (std::vector<double>{5, 6, 1, 2, 5, 6, 3, 4}));
  std::vector<int> slot{1, 3, 0, -1, 2, 2};
  std::vector<double> weight{0.5, 2, 4, 100, 1, -1}, out(6, 99);
  combine_rows(3, 2, 2, slot.data(), weight.data(), gathered.data(), out.data());
  // token 0: 0.5·(1,2) + 2·(3,4); token 1: 4·(5,6); token 2: (5,6) - (5,6)
  EXPECT_EQ(out, (std::vector<double>{6.5, 9, 20, 24, 0, 0}));
}

TEST(Ops, GateGradientIsTheAdjointOfTheCombine) {
  // L = <dy, combine(in, w)>: dL/dw[s] = dweight[s] and dL/din = rows, so both inner products equal L.
  const int tokens = 5, k = 3, cols = 4, slots = tokens * k;
  std::vector<int> slot(slots);
  for (int s = 0; s < slots; ++s) slot[std::size_t(s)] = (s * 7) % slots;  // a permutation of the rows
  auto in = random_vector(std::size_t(slots) * cols, 41), weight = random_vector(std::size_t(slots), 42),
       dy = random_vector(std::size_t(tokens) * cols, 43);
  std::vector<double> y(std::size_t(tokens) * cols), rows(in.size(), 99), dweight(std::size_t(slots), 99);
  combine_rows(tokens, k, cols, slot.data(), weight.data(), in.data(), y.data());
  moe_gate_grad(tokens, k, cols, slot.data(), weight.data(), dy.data(), in.data(), rows.data(), dweight.data());
  double loss = 0, by_rows = 0, by_weights = 0;
  for (std::size_t i = 0; i < y.size(); ++i) loss += dy[i] * y[i];
  for (std::size_t i = 0; i < in.size(); ++i) by_rows += rows[i] * in[i];
  for (int s = 0; s < slots; ++s) by_weights += weight[std::size_t(s)] * dweight[std::size_t(s)];
  EXPECT_NEAR(by_rows, loss, 1e-12);
  EXPECT_NEAR(by_weights, loss, 1e-12);
  // And by hand for one slot: s = 4 is token 1's slot 1, reading row 13.
  double dot = 0;
  for (int c = 0; c < cols; ++c) dot += dy[std::size_t(cols + c)] * in[std::size_t(13 * cols + c)];
  EXPECT_EQ(dweight[4], dot);
  EXPECT_EQ(rows[std::size_t(13 * cols)], weight[4] * dy[std::size_t(cols)]);
  // A dropped slot: no gradient for its gate, its row untouched.
  slot[4] = -1;
  std::fill(rows.begin(), rows.end(), 99.0);
  moe_gate_grad(tokens, k, cols, slot.data(), weight.data(), dy.data(), in.data(), rows.data(), dweight.data());
  EXPECT_EQ(dweight[4], 0.0);
  EXPECT_EQ(rows[std::size_t(13 * cols)], 99.0);
}

const AttentionShape kAttention{2, 5, 3, 4};

TEST(Attention, FastMatchesReference) {
  const auto& s = kAttention;
  const std::size_t n = std::size_t(s.rows()) * s.width();
  auto q = random_vector(n, 15, 2.0), k = random_vector(n, 16, 2.0), v = random_vector(n, 17), d = random_vector(n, 18);
  std::vector<double> p(std::size_t(s.probs_size())), p_ref(p.size()), o(n), o_ref(n);
  attention_forward(s, q.data(), k.data(), v.data(), p.data(), o.data());
  attention_forward_reference(s, q.data(), k.data(), v.data(), p_ref.data(), o_ref.data());
  EXPECT_LT(relative_error(p, p_ref), 1e-12);
  EXPECT_LT(relative_error(o, o_ref), 1e-12);
  std::vector<double> dq(n), dk(n), dv(n), dq_ref(n), dk_ref(n), dv_ref(n);
  attention_backward(s, q.data(), k.data(), v.data(), p.data(), d.data(), dq.data(), dk.data(), dv.data());
  attention_backward_reference(s, q.data(), k.data(), v.data(), p_ref.data(), d.data(), dq_ref.data(), dk_ref.data(),
                               dv_ref.data());
  EXPECT_LT(relative_error(dq, dq_ref), 1e-12);
  EXPECT_LT(relative_error(dk, dk_ref), 1e-12);
  EXPECT_LT(relative_error(dv, dv_ref), 1e-12);
  // Causal: the first position of each sequence sees only itself.
  for (int b = 0; b < s.batch; ++b)
    for (int c = 0; c < s.width(); ++c) {
      std::size_t at = std::size_t(b) * s.seq * s.width() + c;
      EXPECT_NEAR(o[at], v[at], 1e-15);
    }
}

TEST(GradCheck, Attention) {
  const auto& s = kAttention;
  const std::size_t n = std::size_t(s.rows()) * s.width();
  auto q = random_vector(n, 19, 2.0), k = random_vector(n, 20, 2.0), v = random_vector(n, 21), r = random_vector(n, 22);
  std::vector<double> p(std::size_t(s.probs_size())), o(n), dq(n), dk(n), dv(n);
  auto loss = [&] {
    attention_forward(s, q.data(), k.data(), v.data(), p.data(), o.data());
    return dot(o, r);
  };
  loss();
  attention_backward(s, q.data(), k.data(), v.data(), p.data(), r.data(), dq.data(), dk.data(), dv.data());
  EXPECT_LT(relative_error(dq, numeric_gradient(loss, q)), 1e-6);
  EXPECT_LT(relative_error(dk, numeric_gradient(loss, k)), 1e-6);
  EXPECT_LT(relative_error(dv, numeric_gradient(loss, v)), 1e-6);
}

}  // namespace
}  // namespace pipesim::kernels
