// The mixture-of-experts MLP (see moe_mlp.hpp).
#include "runtime/moe_mlp.hpp"

#include <optional>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.hpp"
#include "runtime/tensor_math.hpp"

namespace pipesim {

using detail::input_grad;
using detail::matmul;
using detail::release;
using detail::weight_grad;
using std::size_t;

// 0, 1, ..., n - 1: the slots of tokens whose rows are in (token, slot) order.
static std::vector<int> identity_slots(int n) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = i;
  return v;
}

template <class T>
void renormalise_gates(int rows, int k, T* gates) {
  for (size_t t = 0; t < size_t(rows); ++t) {
    T* g = &gates[t * size_t(k)];
    T sum = 0;
    for (int j = 0; j < k; ++j) sum += g[j];
    for (int j = 0; j < k; ++j) g[j] /= sum;
  }
}

template <class T>
std::vector<T> router_probs_grad(int rows, int experts, int k, const int* chosen, const T* chosen_probs, const T* gates,
                                 const T* dgates) {
  std::vector<T> dprobs(size_t(rows) * size_t(experts), T(0));
  for (size_t t = 0; t < size_t(rows); ++t) {
    const size_t at = t * size_t(k);
    T sum = 0, mean = 0;
    for (int j = 0; j < k; ++j) sum += chosen_probs[at + size_t(j)];
    for (int j = 0; j < k; ++j) mean += gates[at + size_t(j)] * dgates[at + size_t(j)];
    for (int j = 0; j < k; ++j)
      dprobs[t * size_t(experts) + size_t(chosen[at + size_t(j)])] = (dgates[at + size_t(j)] - mean) / sum;
  }
  return dprobs;
}

template <class T>
typename MoeMlp<T>::Params MoeMlp<T>::init(int layer) const {
  const size_t H = size_t(spec_.hidden), E = size_t(spec_.experts), FE = size_t(spec_.expert_ffn);
  const double in_h = 1 / std::sqrt(double(H)), in_fe = 1 / std::sqrt(double(FE));
  using detail::Purpose;
  using detail::Stream;
  Params p;
  p.router = detail::random_tensor<T>(Stream(spec_.seed, Purpose::Router, std::uint64_t(layer), 0), H * E, 0.0, in_h);
  for (int e = exchange_.first_expert(); e < exchange_.first_expert() + exchange_.local_experts(); ++e) {
    auto expert = [&](std::uint64_t which, size_t size, double scale) {
      Stream stream(spec_.seed, Purpose::Expert, std::uint64_t(layer), std::uint64_t(e) * 3 + which);
      return detail::random_tensor<T>(stream, size, 0.0, scale);
    };
    p.experts.push_back({expert(0, H * FE, in_h), expert(1, H * FE, in_h), expert(2, FE * H, in_fe)});
  }
  return p;
}

// Route each token to its top-k experts, run them where they live, and combine their outputs in slot order.
template <class T>
std::vector<T> MoeMlp<T>::forward(const Params& p, const std::vector<T>& x, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, E = spec_.experts, K = spec_.experts_per_token,
            FE = spec_.expert_ffn;
  const size_t row = size_t(H);
  auto logits = matmul(x, p.router, R, H, E, log_);
  s.probs.resize(size_t(R) * size_t(E));
  {
    OpScope op(log_, "softmax_forward", elementwise_work('F', double(R) * E, 2, sizeof(T)));
    kernels::softmax_forward(R, E, logits.data(), s.probs.data(), false);
  }
  s.expert.resize(size_t(R) * size_t(K));
  s.gates.resize(size_t(R) * size_t(K));
  {
    double bytes = (double(R) * E + double(R) * K) * sizeof(T) + double(R) * K * sizeof(int);  // probs -> values, indices
    OpScope op(log_, "top_k", memory_work('F', bytes));
    kernels::top_k(R, E, K, s.probs.data(), s.expert.data(), s.gates.data());
  }
  exchange_.pause();  // where the GPU layer waits for its router's choices: the same turns on every device
  renormalise_gates(R, K, s.gates.data());

  const double e = sizeof(T), RH = double(R) * H, RKH = RH * K;
  std::vector<T> rows(size_t(R) * size_t(K) * row);  // each slot carries its token's row
  {
    OpScope op(log_, "moe_replicate", memory_work('F', (RH + RKH) * e));
    for (size_t t = 0; t < size_t(R); ++t)
      for (size_t j = 0; j < size_t(K); ++j) std::copy_n(&x[t * row], row, &rows[(t * size_t(K) + j) * row]);
  }
  s.local.assign(size_t(exchange_.local_experts()), {});
  auto expert = [&](int i, std::vector<T> in) {
    ExpertRows& r = s.local[size_t(i)];
    const Expert& w = p.experts[size_t(i)];
    const int n = int(in.size() / row);
    r.x = std::move(in);
    r.gate = matmul(r.x, w.w_gate, n, H, FE, log_);
    r.up = matmul(r.x, w.w_up, n, H, FE, log_);
    r.act.resize(size_t(n) * size_t(FE));
    {
      OpScope op(log_, "swiglu_forward", elementwise_work('F', double(n) * FE, 3, sizeof(T)));
      kernels::swiglu_forward(n * FE, r.gate.data(), r.up.data(), r.act.data());
    }
    return matmul(r.act, w.w_down, n, FE, H, log_);
  };
  s.out = exchange_.round_trip(s.expert, rows, H, s.routing, true, expert, "MoE");

  // y_t = Σ_j gate_tj · out_tj, slots in order; out is kept for the gates' gradient.
  OpScope combine(log_, "moe_combine", memory_work('F', (RKH + RH + double(R) * K) * e));
  std::vector<T> y(size_t(R) * row);
  const auto slots = identity_slots(R * K);
  kernels::combine_rows(R, K, H, slots.data(), s.gates.data(), s.out.data(), y.data());
  return y;
}

// The reverse of forward: gate · dy to each slot's expert, the experts' input gradients back, summed over
// slots; and dy · out through the renormalised top-k softmax into the router.
template <class T>
std::vector<T> MoeMlp<T>::backward_input(const Params& p, const std::vector<T>& dy, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, E = spec_.experts, K = spec_.experts_per_token,
            FE = spec_.expert_ffn;
  const size_t row = size_t(H);
  const double e = sizeof(T), RH = double(R) * H, RKH = RH * K;
  std::vector<T> rows(size_t(R) * size_t(K) * row), dgates(size_t(R) * size_t(K));
  const auto slots = identity_slots(R * K);
  std::optional<OpScope> scatter(std::in_place, log_, "moe_gate_grad", memory_work('I', (RH + 2 * RKH) * e));
  kernels::moe_gate_grad(R, K, H, slots.data(), s.gates.data(), dy.data(), s.out.data(), rows.data(), dgates.data());
  scatter.reset();
  auto expert = [&](int i, std::vector<T> in) {
    ExpertRows& r = s.local[size_t(i)];
    const Expert& w = p.experts[size_t(i)];
    const int n = int(in.size() / row);
    r.dout = std::move(in);
    std::vector<T> dact, dx;
    input_grad(r.dout, w.w_down, n, FE, H, dact, false, log_);
    r.dgate.resize(size_t(n) * size_t(FE));
    r.dup.resize(size_t(n) * size_t(FE));
    {
      OpScope op(log_, "swiglu_backward", elementwise_work('I', double(n) * FE, 5, sizeof(T)));
      kernels::swiglu_backward(n * FE, r.gate.data(), r.up.data(), dact.data(), r.dgate.data(), r.dup.data());
    }
    input_grad(r.dgate, w.w_gate, n, H, FE, dx, false, log_);
    input_grad(r.dup, w.w_up, n, H, FE, dx, true, log_);
    release(r.gate);
    release(r.up);
    return dx;
  };
  auto returned = exchange_.round_trip(s.expert, rows, H, s.routing, false, expert, "MoE backward");

  std::vector<T> dx(size_t(R) * row);
  {
    OpScope op(log_, "moe_sum", memory_work('I', (RKH + RH) * e));
    const std::vector<T> ones(size_t(R) * size_t(K), T(1));  // 1 · d is d exactly: a plain sum in slot order
    kernels::combine_rows(R, K, H, slots.data(), ones.data(), returned.data(), dx.data());
  }

  exchange_.pause();  // where the GPU layer waits for the gates' gradients (device_moe.hpp)
  // gate_j = p_j / S over the chosen p.
  std::vector<T> chosen(s.gates.size());
  for (size_t slot = 0; slot < chosen.size(); ++slot)
    chosen[slot] = s.probs[(slot / size_t(K)) * size_t(E) + size_t(s.expert[slot])];
  auto dprobs = router_probs_grad(R, E, K, s.expert.data(), chosen.data(), s.gates.data(), dgates.data());
  s.dlogits.resize(size_t(R) * size_t(E));
  {
    OpScope op(log_, "softmax_backward", elementwise_work('I', double(R) * E, 3, sizeof(T)));
    kernels::softmax_backward(R, E, s.probs.data(), dprobs.data(), s.dlogits.data());
  }
  input_grad(s.dlogits, p.router, R, H, E, dx, true, log_);
  release(s.probs);
  release(s.out);
  return dx;
}

template <class T>
void MoeMlp<T>::backward_weight(const Saved& s, const std::vector<T>& x, Params& g) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, FE = spec_.expert_ffn;
  for (int i = 0; i < exchange_.local_experts(); ++i) {
    const ExpertRows& r = s.local[size_t(i)];
    const int n = int(s.routing.from[size_t(i)].size());
    if (n == 0) continue;
    Expert& ge = g.experts[size_t(i)];
    weight_grad(r.act, r.dout, n, FE, H, ge.w_down, log_);
    weight_grad(r.x, r.dgate, n, H, FE, ge.w_gate, log_);
    weight_grad(r.x, r.dup, n, H, FE, ge.w_up, log_);
  }
  weight_grad(x, s.dlogits, R, H, spec_.experts, g.router, log_);
}

#define PIPESIM_MOE_INSTANTIATE(T)                                                                           \
  template class MoeMlp<T>;                                                                                  \
  template void renormalise_gates<T>(int, int, T*);                                                          \
  template std::vector<T> router_probs_grad<T>(int, int, int, const int*, const T*, const T*, const T*);
PIPESIM_MOE_INSTANTIATE(float)
PIPESIM_MOE_INSTANTIATE(double)
#undef PIPESIM_MOE_INSTANTIATE

}  // namespace pipesim
