// What the workload's layers share (internal to runtime/): deterministic random tensors from our own
// splitmix64 streams keyed by (seed, purpose, index, tensor), never <random>'s distributions, whose output
// differs between standard libraries; and the three GEMM shapes of a linear layer (y = x·W, its input
// gradient, its weight gradient) over kernels/cpu, which sum in a fixed order, so a stage computes the
// same bits on any rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/gemm.hpp"
#include "runtime/op_log.hpp"

namespace pipesim::detail {

inline constexpr double kNormEps = 1e-5;  // RMSNorm's epsilon
inline constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// What a random stream is for; part of its key, so inputs never share numbers with weights. Router and
// experts have their own purposes, so an expert's weights are keyed by (seed, layer, expert) alone,
// whichever EP rank holds it.
enum class Purpose : std::uint64_t { Weights = 1, FinalNorm = 2, Input = 3, Target = 4, Router = 5, Expert = 6 };

inline std::uint64_t finalize(std::uint64_t z) {  // splitmix64's output function
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Stream {
 public:
  Stream(std::uint64_t seed, Purpose purpose, std::uint64_t index, std::uint64_t tensor)
      : state_(finalize(finalize(finalize(seed + kGolden * std::uint64_t(purpose)) + kGolden * index) +
                        kGolden * tensor)) {}
  double uniform() {  // in [-1, 1), from the top 53 bits
    state_ += kGolden;
    return double(finalize(state_) >> 11) * 0x1p-53 * 2.0 - 1.0;
  }

 private:
  std::uint64_t state_;
};

template <class T>
std::vector<T> random_tensor(Stream stream, std::size_t size, double offset, double scale) {
  std::vector<T> t(size);
  for (auto& x : t) x = T(offset + scale * stream.uniform());
  return t;
}

// One layer's weights in the order they are drawn: the k-th tensor of layer l comes from stream
// (seed, Weights, l, k), so how the model is split never changes a weight.
class LayerWeights {
 public:
  LayerWeights(std::uint64_t seed, int layer) : seed_(seed), layer_(layer) {}
  template <class T>
  std::vector<T> next(std::size_t size, double offset, double scale) {
    return random_tensor<T>(Stream(seed_, Purpose::Weights, std::uint64_t(layer_), tensor_++), size, offset, scale);
  }

 private:
  std::uint64_t seed_;
  int layer_;
  std::uint64_t tensor_ = 0;
};

template <class T>
void release(std::vector<T>& t) {
  std::vector<T>().swap(t);
}

// The three GEMMs of a linear layer as kernel parameters, on pointers into any memory (kernels/cpu or
// kernels/cuda take the same GemmParams).
// c = a · b, with a [rows x inner] and b [inner x cols]: the forward y = x·W.
template <class T>
kernels::GemmParams<T> forward_gemm(const T* a, const T* b, int rows, int inner, int cols, T* c) {
  return {.m = rows, .n = cols, .k = inner, .a = a, .lda = inner, .b = b, .ldb = cols, .c = c, .ldc = cols};
}
// c (+)= dy · Wᵀ, with dy [rows x out] and W [in x out]: an input gradient.
template <class T>
kernels::GemmParams<T> input_grad_gemm(const T* dy, const T* w, int rows, int in, int out, T* c, bool accumulate) {
  return {.m = rows, .n = in, .k = out, .trans_b = true, .a = dy, .lda = out, .b = w, .ldb = out,
          .beta = T(accumulate ? 1 : 0), .c = c, .ldc = in};
}
// dW += xᵀ · dy, with x [rows x in] and dy [rows x out]: a weight gradient. gemm forms the micro-batch's
// whole product before adding it, so what is added never depends on what dW already held.
template <class T>
kernels::GemmParams<T> weight_grad_gemm(const T* x, const T* dy, int rows, int in, int out, T* dw) {
  return {.m = in, .n = out, .k = rows, .trans_a = true, .a = x, .lda = in, .b = dy, .ldb = out, .beta = T(1),
          .c = dw, .ldc = out};
}
// Each as an operator of a log: its name and work by pass (F forward, I input gradient, W weight gradient).
inline const char* gemm_name(char pass) { return pass == 'F' ? "gemm_forward" : pass == 'I' ? "gemm_dgrad" : "gemm_wgrad"; }
template <class T>
OpWork gemm_work(char pass, const kernels::GemmParams<T>& p) {
  return pipesim::gemm_work(pass, p.m, p.n, p.k);
}

// The same on host vectors, run by kernels/cpu, each an operator of `log` when there is one (op_log.hpp).
template <class T>
std::vector<T> matmul(const std::vector<T>& a, const std::vector<T>& b, int rows, int inner, int cols,
                      OpLog* log = nullptr) {
  std::vector<T> c(std::size_t(rows) * std::size_t(cols));
  auto p = forward_gemm(a.data(), b.data(), rows, inner, cols, c.data());
  OpScope op(log, gemm_name('F'), gemm_work('F', p));
  kernels::gemm<T>(p);
  return c;
}
template <class T>
void input_grad(const std::vector<T>& dy, const std::vector<T>& w, int rows, int in, int out, std::vector<T>& c,
                bool accumulate, OpLog* log = nullptr) {
  c.resize(std::size_t(rows) * std::size_t(in));
  auto p = input_grad_gemm(dy.data(), w.data(), rows, in, out, c.data(), accumulate);
  OpScope op(log, gemm_name('I'), gemm_work('I', p));
  kernels::gemm<T>(p);
}
template <class T>
void weight_grad(const std::vector<T>& x, const std::vector<T>& dy, int rows, int in, int out, std::vector<T>& dw,
                 OpLog* log = nullptr) {
  auto p = weight_grad_gemm(x.data(), dy.data(), rows, in, out, dw.data());
  OpScope op(log, gemm_name('W'), gemm_work('W', p));
  kernels::gemm<T>(p);
}

}  // namespace pipesim::detail
