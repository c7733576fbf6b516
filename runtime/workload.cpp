// The tiny transformer behind the runtime (see workload.hpp). Every number comes from our own splitmix64
// streams keyed by (seed, what, index), never from <random>'s distributions, whose output differs between
// standard libraries; and every kernel sums in a fixed order, so a stage computes the same bits on any rank.
#include "runtime/workload.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "common/error.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/ops.hpp"

namespace pipesim {
namespace {

using std::size_t;
namespace k = kernels;

constexpr double kEps = 1e-5;  // RMSNorm's epsilon
constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// What a random stream is for; part of its key, so inputs never share numbers with weights.
// Router and experts have their own purposes, so an expert's weights are keyed by (seed, layer, expert)
// alone, whichever EP rank holds it.
enum class Purpose : std::uint64_t { Weights = 1, FinalNorm = 2, Input = 3, Target = 4, Router = 5, Expert = 6 };

std::uint64_t finalize(std::uint64_t z) {  // splitmix64's output function
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
std::vector<T> random_tensor(Stream stream, size_t size, double offset, double scale) {
  std::vector<T> t(size);
  for (auto& x : t) x = T(offset + scale * stream.uniform());
  return t;
}

template <class T>
void release(std::vector<T>& t) {
  std::vector<T>().swap(t);
}

// c = a · b, with a [rows x inner] and b [inner x cols]: the forward y = x·W.
template <class T>
std::vector<T> matmul(const std::vector<T>& a, const std::vector<T>& b, int rows, int inner, int cols) {
  std::vector<T> c(size_t(rows) * cols);
  k::gemm<T>({.m = rows,
              .n = cols,
              .k = inner,
              .a = a.data(),
              .lda = inner,
              .b = b.data(),
              .ldb = cols,
              .c = c.data(),
              .ldc = cols});
  return c;
}

// c (+)= dy · Wᵀ, with dy [rows x out] and W [in x out]: an input gradient.
template <class T>
void input_grad(const std::vector<T>& dy, const std::vector<T>& w, int rows, int in, int out, std::vector<T>& c,
                bool accumulate) {
  c.resize(size_t(rows) * in);
  k::gemm<T>({.m = rows,
              .n = in,
              .k = out,
              .trans_b = true,
              .a = dy.data(),
              .lda = out,
              .b = w.data(),
              .ldb = out,
              .beta = T(accumulate ? 1 : 0),
              .c = c.data(),
              .ldc = in});
}

// dW += xᵀ · dy, with x [rows x in] and dy [rows x out]: a weight gradient. gemm forms the micro-batch's
// whole product before adding it, so what is added never depends on what dW already held.
template <class T>
void weight_grad(const std::vector<T>& x, const std::vector<T>& dy, int rows, int in, int out, std::vector<T>& dw) {
  k::gemm<T>({.m = in,
              .n = out,
              .k = rows,
              .trans_a = true,
              .a = x.data(),
              .lda = in,
              .b = dy.data(),
              .ldb = out,
              .beta = T(1),
              .c = dw.data(),
              .ldc = out});
}

}  // namespace

void validate(const WorkloadSpec& s) {
  auto need = [](bool ok, const char* field, long long value, const std::string& rule) {
    if (!ok) throw Error(fmt::format("workload: {} = {}: {}", field, value, rule));
  };
  need(s.layers >= 1, "layers", s.layers, "must be at least 1");
  need(s.hidden >= 1, "hidden", s.hidden, "must be at least 1");
  need(s.heads >= 1, "heads", s.heads, "must be at least 1");
  need(s.hidden % s.heads == 0, "hidden", s.hidden, "must be a multiple of heads");
  need(s.ffn >= 1, "ffn", s.ffn, "must be at least 1");
  need(s.seq >= 1, "seq", s.seq, "must be at least 1");
  need(s.micro_batch >= 1, "micro_batch", s.micro_batch, "must be at least 1");
  // Kernels index with int: the largest tensors (activations, attention probabilities) must fit.
  long long rows = 1LL * s.micro_batch * s.seq;
  need(rows * std::max(s.hidden, s.ffn) <= INT_MAX && rows * s.heads * s.seq <= INT_MAX, "micro_batch·seq", rows,
       "too large for one micro-batch's tensors");
  need(s.ep >= 1, "ep", s.ep, "must be at least 1");
  need(s.ep_rank >= 0 && s.ep_rank < s.ep, "ep_rank", s.ep_rank, fmt::format("must be in [0, ep = {})", s.ep));
  need(s.experts >= 0, "experts", s.experts, "must be at least 0 (0: a dense MLP)");
  if (s.experts == 0) return;
  // Expert ids travel inside the dispatched rows as T, exact in float below 2^24.
  need(s.experts <= 1 << 16, "experts", s.experts, "must be at most 65536");
  need(s.experts % s.ep == 0, "experts", s.experts, fmt::format("must be a multiple of ep = {}", s.ep));
  need(s.experts_per_token >= 1 && s.experts_per_token <= s.experts, "experts_per_token", s.experts_per_token,
       fmt::format("must be in [1, experts = {}]", s.experts));
  need(s.expert_ffn >= 1, "expert_ffn", s.expert_ffn, "must be at least 1");
  // An expert may receive every routed row of the whole EP group in one step.
  long long routed = rows * s.experts_per_token * s.ep;
  need(routed * (std::max(s.hidden, s.expert_ffn) + 1) <= INT_MAX && rows * s.experts <= INT_MAX,
       "micro_batch·seq·experts_per_token·ep", routed, "too large for one step's routed rows");
}

template <class T>
StageModel<T>::StageModel(const WorkloadSpec& spec, int first_layer, int count, bool first_stage, bool last_stage,
                          AllToAll<T> exchange)
    : spec_(spec),
      first_layer_(first_layer),
      count_(count),
      first_stage_(first_stage),
      last_stage_(last_stage),
      exchange_(std::move(exchange)) {
  validate(spec);
  if (!exchange_) {
    if (spec.experts > 0 && spec.ep > 1)
      throw Error(fmt::format("StageModel: ep = {} needs an all-to-all exchange", spec.ep), Error::Kind::Internal);
    exchange_ = [](std::vector<std::vector<T>> buffers) { return buffers; };
  }
  if (spec.experts > 0) {
    local_experts_ = spec.experts / spec.ep;
    first_expert_ = spec.ep_rank * local_experts_;
  }
  if (first_layer < 0 || count < 0 || first_layer + count > spec.layers)
    throw Error(fmt::format("StageModel: layers [{}, {}) outside the model's {} layers", first_layer,
                            first_layer + count, spec.layers),
                Error::Kind::Internal);
  const size_t H = size_t(spec.hidden), F = size_t(spec.ffn);
  const double in_h = 1 / std::sqrt(double(H)), in_f = 1 / std::sqrt(double(F));
  for (int l = first_layer; l < first_layer + count; ++l) {
    // Keyed by the global layer index alone: how the model is split never changes a weight.
    std::uint64_t tensor = 0;
    auto init = [&](size_t size, double offset, double scale) {
      return random_tensor<T>(Stream(spec.seed, Purpose::Weights, std::uint64_t(l), tensor++), size, offset, scale);
    };
    Params& p = params_.emplace_back();
    p.attn_norm = init(H, 1.0, 0.1);  // near 1 but not 1, so the norm weights' gradients are exercised
    p.wq = init(H * H, 0.0, in_h);
    p.wk = init(H * H, 0.0, in_h);
    p.wv = init(H * H, 0.0, in_h);
    p.wo = init(H * H, 0.0, in_h);
    p.mlp_norm = init(H, 1.0, 0.1);
    if (spec.experts == 0) {
      p.w_gate = init(H * F, 0.0, in_h);
      p.w_up = init(H * F, 0.0, in_h);
      p.w_down = init(F * H, 0.0, in_f);
      continue;
    }
    const size_t E = size_t(spec.experts), FE = size_t(spec.expert_ffn);
    const double in_fe = 1 / std::sqrt(double(FE));
    p.router = random_tensor<T>(Stream(spec.seed, Purpose::Router, std::uint64_t(l), 0), H * E, 0.0, in_h);
    for (int e = first_expert_; e < first_expert_ + local_experts_; ++e) {
      auto expert = [&](std::uint64_t which, size_t size, double scale) {
        Stream stream(spec.seed, Purpose::Expert, std::uint64_t(l), std::uint64_t(e) * 3 + which);
        return random_tensor<T>(stream, size, 0.0, scale);
      };
      p.experts.push_back({expert(0, H * FE, in_h), expert(1, H * FE, in_h), expert(2, FE * H, in_fe)});
    }
  }
  if (last_stage) final_norm_ = random_tensor<T>(Stream(spec.seed, Purpose::FinalNorm, 0, 0), H, 1.0, 0.1);
  grads_ = params_;
  final_norm_grad_ = final_norm_;
  zero_gradients();
}

template <class T>
template <class P, class F>
void StageModel<T>::for_each_tensor(P& p, F&& f) const {
  f("attn_norm", p.attn_norm);
  f("wq", p.wq);
  f("wk", p.wk);
  f("wv", p.wv);
  f("wo", p.wo);
  f("mlp_norm", p.mlp_norm);
  if (spec_.experts == 0) {
    f("w_gate", p.w_gate);
    f("w_up", p.w_up);
    f("w_down", p.w_down);
    return;
  }
  f("router", p.router);
  for (int i = 0; i < local_experts_; ++i) {
    auto& e = p.experts[size_t(i)];
    f(fmt::format("expert{}.w_gate", first_expert_ + i), e.w_gate);
    f(fmt::format("expert{}.w_up", first_expert_ + i), e.w_up);
    f(fmt::format("expert{}.w_down", first_expert_ + i), e.w_down);
  }
}

// All-to-all with its shape checked: one buffer from each EP rank.
template <class T>
std::vector<std::vector<T>> StageModel<T>::trade(std::vector<std::vector<T>> buffers, const char* what) const {
  auto got = exchange_(std::move(buffers));
  if (got.size() != size_t(spec_.ep))
    throw Error(fmt::format("StageModel layers [{}, {}): {} all-to-all returned {} buffers for ep = {}", first_layer_,
                            first_layer_ + count_, what, got.size(), spec_.ep),
                Error::Kind::Internal);
  return got;
}

template <class T>
std::vector<T> StageModel<T>::layer_forward(const Params& p, std::vector<T> x, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, F = spec_.ffn;
  const size_t RH = size_t(R) * H, RF = size_t(R) * F;
  const k::AttentionShape shape{spec_.micro_batch, spec_.seq, spec_.heads, H / spec_.heads};
  s.x = std::move(x);
  s.rstd1.resize(size_t(R));
  s.n1.resize(RH);
  k::rmsnorm_forward(R, H, s.x.data(), p.attn_norm.data(), T(kEps), s.n1.data(), s.rstd1.data());
  s.q = matmul(s.n1, p.wq, R, H, H);
  s.k = matmul(s.n1, p.wk, R, H, H);
  s.v = matmul(s.n1, p.wv, R, H, H);
  s.probs.resize(size_t(shape.probs_size()));
  s.ctx.resize(RH);
  k::attention_forward(shape, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), s.ctx.data());
  s.h = matmul(s.ctx, p.wo, R, H, H);
  k::add(int(RH), s.x.data(), s.h.data(), s.h.data());
  s.rstd2.resize(size_t(R));
  s.n2.resize(RH);
  k::rmsnorm_forward(R, H, s.h.data(), p.mlp_norm.data(), T(kEps), s.n2.data(), s.rstd2.data());
  if (spec_.experts > 0) {
    auto y = moe_forward(p, s);
    k::add(int(RH), s.h.data(), y.data(), y.data());
    return y;
  }
  s.gate = matmul(s.n2, p.w_gate, R, H, F);
  s.up = matmul(s.n2, p.w_up, R, H, F);
  s.act.resize(RF);
  k::swiglu_forward(int(RF), s.gate.data(), s.up.data(), s.act.data());
  auto y = matmul(s.act, p.w_down, R, F, H);
  k::add(int(RH), s.h.data(), y.data(), y.data());
  return y;
}

// Route each token to its top-k experts, send each (token, slot) row to the expert's owner tagged with the
// expert id, run every local expert on its rows, send the outputs back, and combine them in slot order.
// Every expert row is one GEMM row (gemm keeps rows independent of their batch) and each token sums its
// own slots, so no result depends on which rows travelled together.
template <class T>
std::vector<T> StageModel<T>::moe_forward(const Params& p, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, E = spec_.experts, K = spec_.experts_per_token,
            FE = spec_.expert_ffn, P = spec_.ep;
  const size_t row = size_t(H);
  Moe& m = s.moe;
  auto logits = matmul(s.n2, p.router, R, H, E);
  m.probs.resize(size_t(R) * E);
  k::softmax_forward(R, E, logits.data(), m.probs.data(), false);
  m.expert.resize(size_t(R) * K);
  m.gates.resize(size_t(R) * K);
  k::top_k(R, E, K, m.probs.data(), m.expert.data(), m.gates.data());
  for (size_t t = 0; t < size_t(R); ++t) {
    T* g = &m.gates[t * K];
    T sum = 0;
    for (int j = 0; j < K; ++j) sum += g[j];
    for (int j = 0; j < K; ++j) g[j] /= sum;
  }

  // Dispatch: records [expert id, row] in (token, slot) order to each owner.
  std::vector<std::vector<T>> send(static_cast<size_t>(P));
  std::vector<int> sent(static_cast<size_t>(P), 0);
  for (size_t t = 0; t < size_t(R); ++t)
    for (int j = 0; j < K; ++j) {
      int e = m.expert[t * K + size_t(j)];
      auto& b = send[size_t(owner(e))];
      b.push_back(T(e));
      b.insert(b.end(), s.n2.begin() + std::ptrdiff_t(t * row), s.n2.begin() + std::ptrdiff_t((t + 1) * row));
      ++sent[size_t(owner(e))];
    }
  auto received = trade(std::move(send), "MoE dispatch");
  m.received.assign(size_t(P), 0);
  m.local.assign(size_t(local_experts_), {});
  for (int src = 0; src < P; ++src) {
    const auto& b = received[size_t(src)];
    if (b.size() % (row + 1) != 0)
      throw Error(fmt::format("MoE dispatch: {} elements from EP rank {} are not whole rows", b.size(), src),
                  Error::Kind::Internal);
    m.received[size_t(src)] = int(b.size() / (row + 1));
    for (int i = 0; i < m.received[size_t(src)]; ++i) {
      const T* rec = &b[size_t(i) * (row + 1)];
      int e = int(rec[0]) - first_expert_;
      if (e < 0 || e >= local_experts_ || T(e + first_expert_) != rec[0])
        throw Error(
            fmt::format("MoE dispatch: EP rank {} sent a row for expert {}, not held here", src, double(rec[0])),
            Error::Kind::Internal);
      ExpertRows& r = m.local[size_t(e)];
      r.from.emplace_back(src, i);
      r.x.insert(r.x.end(), rec + 1, rec + 1 + row);
    }
  }

  // Experts, then each output row back to where its input came from.
  std::vector<std::vector<T>> back(static_cast<size_t>(P));
  for (int src = 0; src < P; ++src) back[size_t(src)].resize(size_t(m.received[size_t(src)]) * row);
  for (int i = 0; i < local_experts_; ++i) {
    ExpertRows& r = m.local[size_t(i)];
    const int n = int(r.from.size());
    if (n == 0) continue;
    const Expert& w = p.experts[size_t(i)];
    r.gate = matmul(r.x, w.w_gate, n, H, FE);
    r.up = matmul(r.x, w.w_up, n, H, FE);
    r.act.resize(size_t(n) * FE);
    k::swiglu_forward(n * FE, r.gate.data(), r.up.data(), r.act.data());
    auto out = matmul(r.act, w.w_down, n, FE, H);
    for (int q = 0; q < n; ++q) {
      auto [src, at] = r.from[size_t(q)];
      std::copy_n(&out[size_t(q) * row], row, &back[size_t(src)][size_t(at) * row]);
    }
  }
  auto returned = trade(std::move(back), "MoE combine");

  // Combine: y_t = Σ_j gate_tj · out_tj, slots in order; out is kept for the gates' gradient.
  m.out.resize(size_t(R) * K * row);
  std::vector<size_t> next(static_cast<size_t>(P), 0);
  for (int d = 0; d < P; ++d)
    if (returned[size_t(d)].size() != size_t(sent[size_t(d)]) * row)
      throw Error(fmt::format("MoE combine: EP rank {} returned {} elements for {} rows", d,
                              returned[size_t(d)].size(), sent[size_t(d)]),
                  Error::Kind::Internal);
  std::vector<T> y(size_t(R) * row, T(0));
  for (size_t t = 0; t < size_t(R); ++t)
    for (int j = 0; j < K; ++j) {
      const size_t slot = t * K + size_t(j);
      const size_t d = size_t(owner(m.expert[slot]));
      T* o = &m.out[slot * row];
      std::copy_n(&returned[d][next[d]++ * row], row, o);
      const T g = m.gates[slot];
      for (size_t c = 0; c < row; ++c) y[t * row + c] += g * o[c];
    }
  return y;
}

// The reverse of moe_forward: gate · dy to each routed row's expert, the experts' input gradients back,
// summed over slots; and dy · out through the renormalised top-k softmax into the router.
template <class T>
std::vector<T> StageModel<T>::moe_backward_input(const Params& p, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, E = spec_.experts, K = spec_.experts_per_token,
            FE = spec_.expert_ffn, P = spec_.ep;
  const size_t row = size_t(H);
  Moe& m = s.moe;
  std::vector<std::vector<T>> send(static_cast<size_t>(P));
  std::vector<T> dgates(size_t(R) * K);
  for (size_t t = 0; t < size_t(R); ++t)
    for (int j = 0; j < K; ++j) {
      const size_t slot = t * K + size_t(j);
      const T* dy = &s.dy[t * row];
      const T* o = &m.out[slot * row];
      const T g = m.gates[slot];
      T d = 0;
      auto& b = send[size_t(owner(m.expert[slot]))];
      for (size_t c = 0; c < row; ++c) {
        d += dy[c] * o[c];
        b.push_back(g * dy[c]);
      }
      dgates[slot] = d;
    }
  auto received = trade(std::move(send), "MoE backward dispatch");
  for (int src = 0; src < P; ++src)
    if (received[size_t(src)].size() != size_t(m.received[size_t(src)]) * row)
      throw Error(fmt::format("MoE backward dispatch: EP rank {} sent {} elements for the {} rows of its forward", src,
                              received[size_t(src)].size(), m.received[size_t(src)]),
                  Error::Kind::Internal);

  std::vector<std::vector<T>> back(static_cast<size_t>(P));
  for (int src = 0; src < P; ++src) back[size_t(src)].resize(size_t(m.received[size_t(src)]) * row);
  for (int i = 0; i < local_experts_; ++i) {
    ExpertRows& r = m.local[size_t(i)];
    const int n = int(r.from.size());
    if (n == 0) continue;
    const Expert& w = p.experts[size_t(i)];
    r.dout.resize(size_t(n) * row);
    for (int q = 0; q < n; ++q) {
      auto [src, at] = r.from[size_t(q)];
      std::copy_n(&received[size_t(src)][size_t(at) * row], row, &r.dout[size_t(q) * row]);
    }
    std::vector<T> dact, dx;
    input_grad(r.dout, w.w_down, n, FE, H, dact, false);
    r.dgate.resize(size_t(n) * FE);
    r.dup.resize(size_t(n) * FE);
    k::swiglu_backward(n * FE, r.gate.data(), r.up.data(), dact.data(), r.dgate.data(), r.dup.data());
    input_grad(r.dgate, w.w_gate, n, H, FE, dx, false);
    input_grad(r.dup, w.w_up, n, H, FE, dx, true);
    for (int q = 0; q < n; ++q) {
      auto [src, at] = r.from[size_t(q)];
      std::copy_n(&dx[size_t(q) * row], row, &back[size_t(src)][size_t(at) * row]);
    }
    release(r.gate);
    release(r.up);
  }
  auto returned = trade(std::move(back), "MoE backward combine");

  std::vector<T> dn2(size_t(R) * row, T(0));
  std::vector<size_t> next(static_cast<size_t>(P), 0);
  for (size_t t = 0; t < size_t(R); ++t)
    for (int j = 0; j < K; ++j) {
      const size_t d = size_t(owner(m.expert[t * K + size_t(j)]));
      if (returned[d].size() < (next[d] + 1) * row)
        throw Error(fmt::format("MoE backward combine: EP rank {} returned too few rows ({} elements)", d,
                                returned[d].size()),
                    Error::Kind::Internal);
      const T* dx = &returned[d][next[d]++ * row];
      for (size_t c = 0; c < row; ++c) dn2[t * row + c] += dx[c];
    }

  // gate_j = p_j / S over the chosen p: dp_j = (dgate_j - Σ_i gate_i · dgate_i) / S; unchosen dp = 0.
  std::vector<T> dprobs(size_t(R) * E, T(0));
  for (size_t t = 0; t < size_t(R); ++t) {
    const int* chosen = &m.expert[t * K];
    const T *pr = &m.probs[t * E], *g = &m.gates[t * K], *dg = &dgates[t * K];
    T sum = 0, mean = 0;
    for (int j = 0; j < K; ++j) sum += pr[chosen[j]];
    for (int j = 0; j < K; ++j) mean += g[j] * dg[j];
    for (int j = 0; j < K; ++j) dprobs[t * E + size_t(chosen[j])] = (dg[j] - mean) / sum;
  }
  m.dlogits.resize(size_t(R) * E);
  k::softmax_backward(R, E, m.probs.data(), dprobs.data(), m.dlogits.data());
  input_grad(m.dlogits, p.router, R, H, E, dn2, true);
  release(m.probs);
  release(m.out);
  return dn2;
}

template <class T>
std::vector<T> StageModel<T>::layer_backward_input(const Params& p, Saved& s, std::vector<T> dy) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, F = spec_.ffn;
  const size_t RH = size_t(R) * H, RF = size_t(R) * F;
  const k::AttentionShape shape{spec_.micro_batch, spec_.seq, spec_.heads, H / spec_.heads};
  s.dy = std::move(dy);
  if (spec_.experts > 0) {
    s.dn2 = moe_backward_input(p, s);
  } else {
    std::vector<T> dact;
    input_grad(s.dy, p.w_down, R, F, H, dact, false);
    s.dgate.resize(RF);
    s.dup.resize(RF);
    k::swiglu_backward(int(RF), s.gate.data(), s.up.data(), dact.data(), s.dgate.data(), s.dup.data());
    input_grad(s.dgate, p.w_gate, R, H, F, s.dn2, false);
    input_grad(s.dup, p.w_up, R, H, F, s.dn2, true);
  }
  s.dh.resize(RH);
  k::rmsnorm_backward_input(R, H, s.h.data(), p.mlp_norm.data(), s.rstd2.data(), s.dn2.data(), s.dh.data());
  k::add(int(RH), s.dh.data(), s.dy.data(), s.dh.data());
  std::vector<T> dctx;
  input_grad(s.dh, p.wo, R, H, H, dctx, false);
  s.dq.resize(RH);
  s.dk.resize(RH);
  s.dv.resize(RH);
  k::attention_backward(shape, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), dctx.data(), s.dq.data(),
                        s.dk.data(), s.dv.data());
  input_grad(s.dq, p.wq, R, H, H, s.dn1, false);
  input_grad(s.dk, p.wk, R, H, H, s.dn1, true);
  input_grad(s.dv, p.wv, R, H, H, s.dn1, true);
  std::vector<T> dx(RH);
  k::rmsnorm_backward_input(R, H, s.x.data(), p.attn_norm.data(), s.rstd1.data(), s.dn1.data(), dx.data());
  k::add(int(RH), dx.data(), s.dh.data(), dx.data());
  // W needs only the layer inputs of each GEMM and norm, and the gradients at their outputs.
  for (auto* t : {&s.q, &s.k, &s.v, &s.probs, &s.gate, &s.up}) release(*t);
  return dx;
}

template <class T>
void StageModel<T>::layer_backward_weight(const Saved& s, Params& g) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, F = spec_.ffn;
  if (spec_.experts > 0) {
    const int FE = spec_.expert_ffn;
    for (int i = 0; i < local_experts_; ++i) {
      const ExpertRows& r = s.moe.local[size_t(i)];
      const int n = int(r.from.size());
      if (n == 0) continue;
      Expert& ge = g.experts[size_t(i)];
      weight_grad(r.act, r.dout, n, FE, H, ge.w_down);
      weight_grad(r.x, r.dgate, n, H, FE, ge.w_gate);
      weight_grad(r.x, r.dup, n, H, FE, ge.w_up);
    }
    weight_grad(s.n2, s.moe.dlogits, R, H, spec_.experts, g.router);
  } else {
    weight_grad(s.act, s.dy, R, F, H, g.w_down);
    weight_grad(s.n2, s.dgate, R, H, F, g.w_gate);
    weight_grad(s.n2, s.dup, R, H, F, g.w_up);
  }
  k::rmsnorm_backward_weight(R, H, s.h.data(), s.rstd2.data(), s.dn2.data(), g.mlp_norm.data());
  weight_grad(s.ctx, s.dh, R, H, H, g.wo);
  weight_grad(s.n1, s.dq, R, H, H, g.wq);
  weight_grad(s.n1, s.dk, R, H, H, g.wk);
  weight_grad(s.n1, s.dv, R, H, H, g.wv);
  k::rmsnorm_backward_weight(R, H, s.x.data(), s.rstd1.data(), s.dn1.data(), g.attn_norm.data());
}

template <class T>
typename StageModel<T>::Microbatch& StageModel<T>::in_flight(int microbatch, const char* pass) {
  auto it = saved_.find(microbatch);
  if (it == saved_.end())
    throw Error(fmt::format("StageModel layers [{}, {}): {} of micro-batch {} without its forward", first_layer_,
                            first_layer_ + count_, pass, microbatch),
                Error::Kind::Internal);
  return it->second;
}

template <class T>
std::vector<T> StageModel<T>::forward(int microbatch, const std::vector<T>& input) {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden;
  const size_t RH = size_t(R) * H;
  auto misuse = [&](const std::string& what) {
    throw Error(fmt::format("StageModel layers [{}, {}): forward of micro-batch {}: {}", first_layer_,
                            first_layer_ + count_, microbatch, what),
                Error::Kind::Internal);
  };
  if (microbatch < 0) misuse("negative micro-batch");
  if (saved_.count(microbatch)) misuse("already in flight (forward twice before its W)");
  std::vector<T> x;
  if (first_stage_) {
    x = random_tensor<T>(Stream(spec_.seed, Purpose::Input, std::uint64_t(microbatch), 0), RH, 0.0, 1.0);
  } else {
    if (input.size() != RH) misuse(fmt::format("input has {} elements, expected {}", input.size(), RH));
    x = input;
  }
  Microbatch m;
  m.layers.resize(size_t(count_));
  for (int l = 0; l < count_; ++l) x = layer_forward(params_[size_t(l)], std::move(x), m.layers[size_t(l)]);
  if (!last_stage_) {
    saved_.emplace(microbatch, std::move(m));
    return x;
  }
  m.last = std::move(x);
  m.rstd_final.resize(size_t(R));
  std::vector<T> out(RH);
  k::rmsnorm_forward(R, H, m.last.data(), final_norm_.data(), T(kEps), out.data(), m.rstd_final.data());
  auto target = random_tensor<T>(Stream(spec_.seed, Purpose::Target, std::uint64_t(microbatch), 0), RH, 0.0, 1.0);
  // dL/dout is a by-product of the loss; keeping it instead of the output costs nothing extra.
  T squares = 0;
  m.dout.resize(RH);
  for (size_t i = 0; i < RH; ++i) {
    T d = out[i] - target[i];
    squares += d * d;
    m.dout[i] = d / T(RH);
  }
  T loss = squares / T(2 * RH);
  losses_[microbatch] = loss;
  saved_.emplace(microbatch, std::move(m));
  return {loss};
}

template <class T>
std::vector<T> StageModel<T>::backward_input(int microbatch, const std::vector<T>& grad_output) {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden;
  const size_t RH = size_t(R) * H;
  Microbatch& m = in_flight(microbatch, "backward_input");
  auto misuse = [&](const std::string& what) {
    throw Error(fmt::format("StageModel layers [{}, {}): backward_input of micro-batch {}: {}", first_layer_,
                            first_layer_ + count_, microbatch, what),
                Error::Kind::Internal);
  };
  if (m.input_done) misuse("ran twice");
  std::vector<T> dy(RH);
  if (last_stage_) {
    k::rmsnorm_backward_input(R, H, m.last.data(), final_norm_.data(), m.rstd_final.data(), m.dout.data(), dy.data());
  } else {
    if (grad_output.size() != RH) misuse(fmt::format("gradient has {} elements, expected {}", grad_output.size(), RH));
    dy = grad_output;
  }
  for (int l = count_ - 1; l >= 0; --l)
    dy = layer_backward_input(params_[size_t(l)], m.layers[size_t(l)], std::move(dy));
  m.input_done = true;
  if (first_stage_) return {};
  return dy;
}

template <class T>
void StageModel<T>::backward_weight(int microbatch) {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden;
  Microbatch& m = in_flight(microbatch, "backward_weight");
  if (!m.input_done)
    throw Error(fmt::format("StageModel layers [{}, {}): backward_weight of micro-batch {} before its backward_input",
                            first_layer_, first_layer_ + count_, microbatch),
                Error::Kind::Internal);
  for (int l = 0; l < count_; ++l) layer_backward_weight(m.layers[size_t(l)], grads_[size_t(l)]);
  if (last_stage_)
    k::rmsnorm_backward_weight(R, H, m.last.data(), m.rstd_final.data(), m.dout.data(), final_norm_grad_.data());
  saved_.erase(microbatch);
}

template <class T>
std::vector<T> StageModel<T>::backward(int microbatch, const std::vector<T>& grad_output) {
  auto grad_input = backward_input(microbatch, grad_output);
  backward_weight(microbatch);
  return grad_input;
}

template <class T>
std::vector<int> StageModel<T>::routed_experts(int microbatch, int layer) const {
  auto it = saved_.find(microbatch);
  if (spec_.experts == 0 || it == saved_.end() || layer < first_layer_ || layer >= first_layer_ + count_)
    throw Error(fmt::format("StageModel layers [{}, {}): no routing for micro-batch {} in layer {}", first_layer_,
                            first_layer_ + count_, microbatch, layer),
                Error::Kind::Internal);
  return it->second.layers[size_t(layer - first_layer_)].moe.expert;
}

template <class T>
T StageModel<T>::loss(int microbatch) const {
  auto it = losses_.find(microbatch);
  if (!last_stage_ || it == losses_.end())
    throw Error(fmt::format("StageModel layers [{}, {}): no loss for micro-batch {} ({})", first_layer_,
                            first_layer_ + count_, microbatch, last_stage_ ? "no forward yet" : "not the last stage"),
                Error::Kind::Internal);
  return it->second;
}

template <class T>
std::vector<std::pair<std::string, std::vector<T>>> StageModel<T>::gradients() const {
  std::vector<std::pair<std::string, std::vector<T>>> out;
  for (size_t l = 0; l < grads_.size(); ++l)
    for_each_tensor(grads_[l], [&](const std::string& name, const std::vector<T>& g) {
      out.emplace_back(fmt::format("layer{}.{}", first_layer_ + int(l), name), g);
    });
  if (last_stage_) out.emplace_back("final_norm", final_norm_grad_);
  return out;
}

template <class T>
std::vector<std::pair<std::string, std::span<T>>> StageModel<T>::parameters() {
  std::vector<std::pair<std::string, std::span<T>>> out;
  for (size_t l = 0; l < params_.size(); ++l)
    for_each_tensor(params_[l], [&](const std::string& name, std::vector<T>& w) {
      out.emplace_back(fmt::format("layer{}.{}", first_layer_ + int(l), name), std::span<T>(w));
    });
  if (last_stage_) out.emplace_back("final_norm", std::span<T>(final_norm_));
  return out;
}

template <class T>
void StageModel<T>::zero_gradients() {
  for (auto& g : grads_)
    for_each_tensor(g, [](const std::string&, std::vector<T>& t) { std::fill(t.begin(), t.end(), T(0)); });
  std::fill(final_norm_grad_.begin(), final_norm_grad_.end(), T(0));
}

template class StageModel<float>;
template class StageModel<double>;

}  // namespace pipesim
