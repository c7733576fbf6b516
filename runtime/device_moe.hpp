// The mixture-of-experts MLP as a device runs it, tensors in the device's memory: the same layer as MoeMlp
// (moe_mlp.hpp), written against a kernel set `Ops` (HostMoeOps below runs kernels/cpu on host vectors;
// runtime/cuda/cuda_moe_ops.hpp runs kernels/cuda on the GPU). Every row moves by an index (gather_rows,
// combine_rows, moe_gate_grad) planned on the host from the router's choices (expert_exchange.hpp): only the
// top-k choices, the gates' gradients and the all-to-all buffers cross to the host, the all-to-all itself
// being the host exchange. The forward and input-gradient GEMMs run per (expert, source EP rank) chunk, so
// each has the shape it has in the single-process reference (one source per expert there): cuBLAS may pick
// another algorithm, and other bits, for another shape (or for another alignment: a chunk starts begin·width
// elements into its tensor, 16-byte aligned whenever hidden and expert_ffn are multiples of 4 in fp32).
// In an overlapped pair (runtime/pair_runner.hpp) the layer gives the other half its turn before each wait
// for its own stream, so that the other half's kernels are queued on the GPU while this one waits and
// trades. Weight gradients add chunk by chunk too: one GEMM over all of an expert's rows would sum in another order
// (fine at 1e-5) but, under FP8 math, round with scales taken over other rows (not fine).
// Run on the host (tests/runtime/device_moe_test.cpp), it gives MoeMlp's bits (weight gradients to rounding
// with several EP ranks).
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/ops.hpp"
#include "runtime/expert_exchange.hpp"
#include "runtime/moe_mlp.hpp"
#include "runtime/op_log.hpp"
#include "runtime/tensor_math.hpp"
#include "runtime/workload.hpp"

namespace pipesim {

// The kernel set on host memory: a Tensor is a vector, uploads and downloads are copies.
template <class T>
struct HostMoeOps {
  using Value = T;
  using Tensor = std::vector<T>;
  using Index = std::vector<int>;
  // Filled with NaN, not zero: GPU memory comes uninitialised, so a read of what nobody wrote must show here.
  Tensor tensor(std::size_t n) { return Tensor(n, std::numeric_limits<T>::quiet_NaN()); }
  Index index(std::size_t n) { return Index(n); }
  template <class U>
  std::vector<U> upload(const std::vector<U>& host) { return host; }
  template <class U>
  std::vector<U> download(const std::vector<U>& tensor) { return tensor; }
  // A GEMM as an operator of `log` (pass F, I or W).
  void gemm(OpLog* log, char pass, const kernels::GemmParams<T>& p) {
    OpScope op(log, detail::gemm_name(pass), detail::gemm_work(pass, p));
    kernels::gemm<T>(p);
  }
  void softmax_forward(int rows, int cols, const T* x, T* y) { kernels::softmax_forward(rows, cols, x, y, false); }
  void softmax_backward(int rows, int cols, const T* y, const T* dy, T* dx) {
    kernels::softmax_backward(rows, cols, y, dy, dx);
  }
  void top_k(int rows, int cols, int k, const T* x, int* index, T* value) {
    kernels::top_k(rows, cols, k, x, index, value);
  }
  void swiglu_forward(int n, const T* gate, const T* up, T* out) { kernels::swiglu_forward(n, gate, up, out); }
  void swiglu_backward(int n, const T* gate, const T* up, const T* dout, T* dgate, T* dup) {
    kernels::swiglu_backward(n, gate, up, dout, dgate, dup);
  }
  void gather_rows(int rows, int cols, const int* source, const T* in, T* out) {
    kernels::gather_rows(rows, cols, source, in, out);
  }
  void combine_rows(int tokens, int k, int cols, const int* slot, const T* weight, const T* in, T* out) {
    kernels::combine_rows(tokens, k, cols, slot, weight, in, out);
  }
  void moe_gate_grad(int tokens, int k, int cols, const int* slot, const T* weight, const T* dy, const T* out,
                     T* rows, T* dweight) {
    kernels::moe_gate_grad(tokens, k, cols, slot, weight, dy, out, rows, dweight);
  }
};

template <class Ops>
class DeviceMoe {
 public:
  using T = typename Ops::Value;
  using Tensor = typename Ops::Tensor;
  using Index = typename Ops::Index;
  // The router [hidden x experts] and each local expert's w_gate, w_up [hidden x expert_ffn] and w_down
  // [expert_ffn x hidden], in the device's memory; the gradients alike (added to, never overwritten).
  template <class P>
  struct Tensors {
    P router = nullptr;
    std::vector<P> w_gate, w_up, w_down;
  };
  using Weights = Tensors<const T*>;
  using Grads = Tensors<T*>;
  struct Saved {  // one micro-batch
    std::vector<int> expert;              // [rows x k] each token's chosen experts, slot order
    std::vector<T> chosen, gates;         // their probabilities, renormalised
    std::vector<int> sent;                // rows to each EP rank
    ExpertRouting routing;                // rows from each EP rank to each local expert
    std::vector<ExpertChunk> chunks;
    Index position, group, ungroup;       // slot -> sent row; expert row <- arrived row; arrived row <- expert row
    Tensor probs, gates_d, out;           // out: the expert outputs back, in sent order
    Tensor x, gate, up, act;              // the local experts' rows, expert after expert
    Tensor dout, dgate, dup, dlogits;     // from I
  };

  DeviceMoe(const WorkloadSpec& spec, AllToAll<T> exchange, std::string context, Ops ops, OpLog* log)
      : spec_(spec), exchange_(spec, std::move(exchange), std::move(context)), ops_(std::move(ops)), log_(log) {
    exchange_.set_op_log(log);
  }
  const ExpertExchange<T>& exchange() const { return exchange_; }
  Ops& ops() { return ops_; }

  // x = RMSNorm(h) [rows x hidden] -> the MoE output (no residual).
  Tensor forward(const Weights& w, const T* x, Saved& s) {
    const int R = rows(), H = spec_.hidden, E = spec_.experts, K = spec_.experts_per_token, FE = spec_.expert_ffn;
    Tensor logits = ops_.tensor(std::size_t(R) * E);
    gemm('F', detail::forward_gemm(x, w.router, R, H, E, logits.data()));
    s.probs = ops_.tensor(std::size_t(R) * E);
    {
      OpScope op(log_, "softmax_forward", elementwise_work('F', double(R) * E, 2, sizeof(T)));
      ops_.softmax_forward(R, E, logits.data(), s.probs.data());
    }
    Index chosen = ops_.index(std::size_t(R) * K);
    Tensor values = ops_.tensor(std::size_t(R) * K);
    {
      double bytes = (double(R) * E + double(R) * K) * sizeof(T) + double(R) * K * sizeof(int);
      OpScope op(log_, "top_k", memory_work('F', bytes));
      ops_.top_k(R, E, K, s.probs.data(), chosen.data(), values.data());
    }
    exchange_.pause();  // each wait for this stream gives an overlapped pair's other half its turn first
    s.expert = ops_.download(chosen);
    s.chosen = ops_.download(values);
    s.gates = s.chosen;
    renormalise_gates(R, K, s.gates.data());
    s.gates_d = ops_.upload(s.gates);

    auto plan = plan_dispatch(s.expert, exchange_.ep(), exchange_.local_experts());
    s.sent = plan.sent;
    s.position = ops_.upload(plan.position);
    std::vector<int> token(plan.order.size()), ids(plan.order.size());
    for (std::size_t i = 0; i < plan.order.size(); ++i) {
      token[i] = plan.order[i] / K;
      ids[i] = s.expert[std::size_t(plan.order[i])];
    }
    Tensor send = gather(ops_.upload(token), x, H, "moe_dispatch_pack", 'F');
    exchange_.pause();
    auto received = exchange_.trade(split_rows(ops_.download(send), plan.sent, H, &ids), "MoE dispatch", 'F', false);
    std::vector<std::vector<int>> got_ids;
    std::vector<int> count;
    auto arrived = join_rows(received, H, count, &got_ids, named("MoE dispatch"));
    s.routing = learn_routing(got_ids, exchange_.first_expert(), exchange_.local_experts(), named("MoE dispatch"));
    s.chunks = expert_chunks(s.routing);
    auto group = expert_major_rows(s.routing);
    std::vector<int> ungroup(group.size());
    for (std::size_t q = 0; q < group.size(); ++q) ungroup[std::size_t(group[q])] = int(q);
    s.group = ops_.upload(group);
    s.ungroup = ops_.upload(ungroup);

    const int N = int(group.size());
    if (double(N) * std::max(FE, H) > double(std::numeric_limits<int>::max()))
      throw Error(fmt::format("{}: {} rows of {} for the local experts overflow a kernel's element count",
                              exchange_.context(), N, std::max(FE, H)));
    s.x = gather(s.group, ops_.upload(arrived).data(), H, "moe_group", 'F');
    s.gate = ops_.tensor(std::size_t(N) * FE);
    s.up = ops_.tensor(std::size_t(N) * FE);
    s.act = ops_.tensor(std::size_t(N) * FE);
    Tensor out = ops_.tensor(std::size_t(N) * H);
    for (auto& c : s.chunks) {
      gemm('F', detail::forward_gemm(row(s.x, c.begin, H), w.w_gate[c.expert], c.rows, H, FE, row(s.gate, c.begin, FE)));
      gemm('F', detail::forward_gemm(row(s.x, c.begin, H), w.w_up[c.expert], c.rows, H, FE, row(s.up, c.begin, FE)));
    }
    if (N > 0) {
      OpScope op(log_, "swiglu_forward", elementwise_work('F', double(N) * FE, 3, sizeof(T)));
      ops_.swiglu_forward(N * FE, s.gate.data(), s.up.data(), s.act.data());
    }
    for (auto& c : s.chunks)
      gemm('F', detail::forward_gemm(row(s.act, c.begin, FE), w.w_down[c.expert], c.rows, FE, H, row(out, c.begin, H)));
    s.out = send_back(gather(s.ungroup, out.data(), H, "moe_return_pack", 'F'), s, "MoE combine", 'F');

    // y_t = Σ_j gate_tj · out_tj, slots in order; out is kept for the gates' gradient.
    Tensor y = ops_.tensor(std::size_t(R) * H);
    OpScope op(log_, "moe_combine", memory_work('F', (double(R) * K * H + double(R) * H + double(R) * K) * sizeof(T)));
    ops_.combine_rows(R, K, H, s.position.data(), s.gates_d.data(), s.out.data(), y.data());
    return y;
  }

  // dy at the output -> the gradient at x, through the experts and the router.
  Tensor backward_input(const Weights& w, const T* dy, Saved& s) {
    const int R = rows(), H = spec_.hidden, E = spec_.experts, K = spec_.experts_per_token, FE = spec_.expert_ffn;
    const int N = sum(s.routing.received);
    Tensor rows_out = ops_.tensor(std::size_t(R) * K * H), dgates = ops_.tensor(std::size_t(R) * K);
    {
      OpScope op(log_, "moe_gate_grad", memory_work('I', (double(R) * H + 2.0 * R * K * H) * sizeof(T)));
      ops_.moe_gate_grad(R, K, H, s.position.data(), s.gates_d.data(), dy, s.out.data(), rows_out.data(), dgates.data());
    }
    exchange_.pause();
    auto received =
        exchange_.trade(split_rows(ops_.download(rows_out), s.sent, H, nullptr), "MoE backward dispatch", 'I', false);
    auto count = s.routing.received;
    auto arrived = ops_.upload(join_rows(received, H, count, nullptr, named("MoE backward dispatch")));
    s.dout = gather(s.group, arrived.data(), H, "moe_group", 'I');

    Tensor dact = ops_.tensor(std::size_t(N) * FE), dx_e = ops_.tensor(std::size_t(N) * H);
    for (auto& c : s.chunks)
      gemm('I', detail::input_grad_gemm(row(s.dout, c.begin, H), w.w_down[c.expert], c.rows, FE, H,
                                        row(dact, c.begin, FE), false));
    s.dgate = ops_.tensor(std::size_t(N) * FE);
    s.dup = ops_.tensor(std::size_t(N) * FE);
    if (N > 0) {
      OpScope op(log_, "swiglu_backward", elementwise_work('I', double(N) * FE, 5, sizeof(T)));
      ops_.swiglu_backward(N * FE, s.gate.data(), s.up.data(), dact.data(), s.dgate.data(), s.dup.data());
    }
    for (auto& c : s.chunks) {
      gemm('I', detail::input_grad_gemm(row(s.dgate, c.begin, FE), w.w_gate[c.expert], c.rows, H, FE,
                                        row(dx_e, c.begin, H), false));
      gemm('I', detail::input_grad_gemm(row(s.dup, c.begin, FE), w.w_up[c.expert], c.rows, H, FE,
                                        row(dx_e, c.begin, H), true));
    }
    s.gate = Tensor();
    s.up = Tensor();
    Tensor returned = send_back(gather(s.ungroup, dx_e.data(), H, "moe_return_pack", 'I'), s, "MoE backward combine", 'I');

    Tensor dx = ops_.tensor(std::size_t(R) * H);
    {
      OpScope op(log_, "moe_sum", memory_work('I', (double(R) * K * H + double(R) * H) * sizeof(T)));
      // 1 · d is d: a plain sum in slot order. The ones are uploaded once, not every backward.
      if (ones_.size() == 0) ones_ = ops_.upload(std::vector<T>(std::size_t(R) * K, T(1)));
      ops_.combine_rows(R, K, H, s.position.data(), ones_.data(), returned.data(), dx.data());
    }
    exchange_.pause();
    auto dg = ops_.download(dgates);
    auto dprobs = ops_.upload(router_probs_grad(R, E, K, s.expert.data(), s.chosen.data(), s.gates.data(), dg.data()));
    s.dlogits = ops_.tensor(std::size_t(R) * E);
    {
      OpScope op(log_, "softmax_backward", elementwise_work('I', double(R) * E, 3, sizeof(T)));
      ops_.softmax_backward(R, E, s.probs.data(), dprobs.data(), s.dlogits.data());
    }
    gemm('I', detail::input_grad_gemm(s.dlogits.data(), w.router, R, H, E, dx.data(), true));
    s.probs = Tensor();
    s.out = Tensor();
    return dx;
  }

  // Adds this micro-batch's weight gradients: each local expert's chunk by chunk, then the router's.
  void backward_weight(const Saved& s, const T* x, const Grads& g) {
    const int R = rows(), H = spec_.hidden, FE = spec_.expert_ffn;
    for (auto& c : s.chunks) {
      const int e = c.expert, n = c.rows;
      gemm('W', detail::weight_grad_gemm(row(s.act, c.begin, FE), row(s.dout, c.begin, H), n, FE, H, g.w_down[e]));
      gemm('W', detail::weight_grad_gemm(row(s.x, c.begin, H), row(s.dgate, c.begin, FE), n, H, FE, g.w_gate[e]));
      gemm('W', detail::weight_grad_gemm(row(s.x, c.begin, H), row(s.dup, c.begin, FE), n, H, FE, g.w_up[e]));
    }
    gemm('W', detail::weight_grad_gemm(x, s.dlogits.data(), R, H, spec_.experts, g.router));
  }

 private:
  int rows() const { return spec_.micro_batch * spec_.seq; }
  static int sum(const std::vector<int>& v) {
    int total = 0;
    for (int n : v) total += n;
    return total;
  }
  static T* row(Tensor& t, int r, int width) { return t.data() + std::size_t(r) * std::size_t(width); }
  static const T* row(const Tensor& t, int r, int width) { return t.data() + std::size_t(r) * std::size_t(width); }
  void gemm(char pass, const kernels::GemmParams<T>& p) { ops_.gemm(log_, pass, p); }
  // Rows of `in` picked by `index` (one per output row), as an operator named `name`.
  Tensor gather(const Index& index, const T* in, int width, const char* name, char pass) {
    const int n = int(index.size());
    Tensor out = ops_.tensor(std::size_t(n) * std::size_t(width));
    OpScope op(log_, name, memory_work(pass, 2.0 * n * width * sizeof(T)));
    if (n > 0) ops_.gather_rows(n, width, index.data(), in, out.data());
    return out;
  }
  // The experts' results, in arrival order, back to the EP ranks that sent the rows -> what each slot's row
  // became, in sent order.
  Tensor send_back(const Tensor& back, const Saved& s, const std::string& what, char pass) {
    exchange_.pause();
    auto returned =
        exchange_.trade(split_rows(ops_.download(back), s.routing.received, spec_.hidden, nullptr), what, pass, false);
    auto sent = s.sent;
    return ops_.upload(join_rows(returned, spec_.hidden, sent, nullptr, named(what)));
  }
  std::string named(const std::string& what) const { return exchange_.context() + ": " + what; }

  WorkloadSpec spec_;
  ExpertExchange<T> exchange_;
  Ops ops_;
  OpLog* log_;
  Tensor ones_;  // [rows x k] of 1: the weights that make combine_rows a sum
};

}  // namespace pipesim
