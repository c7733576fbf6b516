// The mixture-of-experts MLP of a transformer layer: a top-k softmax router over `experts` SwiGLU experts,
// spread over the `ep` expert-parallel ranks, each token's output the sum of its slots' expert outputs
// weighted by the renormalised top-k probabilities. F dispatches and combines through ExpertExchange; I
// sends the output gradients the same way and returns the input gradients; W never communicates. Each
// token combines its slots in order, so the results do not depend on ep or on which micro-batches run
// together. Stateless per micro-batch: a StageModel passes each layer's Params and Saved in. It pauses
// (ExpertExchange::pause: an overlapped pair's other half may run) where the GPU layer does
// (runtime/device_moe.hpp), so EP ranks on either device trade in the same order.
#pragma once

#include <string>
#include <vector>

#include <fmt/format.h>

#include "runtime/expert_exchange.hpp"
#include "runtime/op_log.hpp"
#include "runtime/workload.hpp"

namespace pipesim {

// The router's steps on the host, shared with the CUDA stage's MoE (runtime/device_moe.hpp): each token's
// top-k probabilities renormalised to sum to one, in slot order ([rows x k], in place);
template <class T>
void renormalise_gates(int rows, int k, T* gates);
// and their backward: with S the sum of the chosen probabilities, dp_j = (dgate_j - Σ_i gate_i · dgate_i) / S
// for the chosen experts, 0 for the others -> dprobs [rows x experts].
template <class T>
std::vector<T> router_probs_grad(int rows, int experts, int k, const int* chosen, const T* chosen_probs, const T* gates,
                                 const T* dgates);

template <class T>
class MoeMlp {
 public:
  struct Expert {
    std::vector<T> w_gate, w_up, w_down;
  };
  struct Params {
    std::vector<T> router;        // [hidden x experts]
    std::vector<Expert> experts;  // the local ones
  };
  struct ExpertRows {  // the rows one local expert processes for one micro-batch, in routing order
    std::vector<T> x, gate, up, act;  // from F; gate/up dropped after I
    std::vector<T> dout, dgate, dup;  // from I
  };
  struct Saved {  // one micro-batch
    std::vector<int> expert;           // [rows x k]: each token's chosen experts, slot order
    std::vector<T> probs, gates, out;  // router probabilities, renormalised gates, expert outputs; to I
    std::vector<T> dlogits;            // from I, for the router's W
    ExpertRouting routing;             // from F's dispatch, for I's
    std::vector<ExpertRows> local;     // per local expert
  };

  // `exchange` trades rows among the EP ranks (see ExpertExchange); `context` prefixes error messages.
  MoeMlp(const WorkloadSpec& spec, AllToAll<T> exchange, std::string context)
      : spec_(spec), exchange_(spec, std::move(exchange), std::move(context)) {}
  // GEMMs, row-wise kernels, the row shuffles and the all-to-alls as operators of `log` (op_log.hpp).
  void set_op_log(OpLog* log) {
    log_ = log;
    exchange_.set_op_log(log);
  }
  // The router, keyed by (seed, layer), and this rank's experts, each keyed by (seed, layer, expert).
  Params init(int layer) const;
  // x = RMSNorm(h) [rows x hidden] -> the MoE output (no residual).
  std::vector<T> forward(const Params& p, const std::vector<T>& x, Saved& s) const;
  // dy at the output -> the gradient at x, through the experts and the router.
  std::vector<T> backward_input(const Params& p, const std::vector<T>& dy, Saved& s) const;
  void backward_weight(const Saved& s, const std::vector<T>& x, Params& grads) const;

  // "router", then "expert{e}.w_gate", ".w_up", ".w_down" for the local experts (global e).
  template <class P, class F>
  void for_each_tensor(P& p, F&& f) const {
    f(std::string("router"), p.router);
    for (int i = 0; i < exchange_.local_experts(); ++i) {
      auto& e = p.experts[std::size_t(i)];
      f(fmt::format("expert{}.w_gate", exchange_.first_expert() + i), e.w_gate);
      f(fmt::format("expert{}.w_up", exchange_.first_expert() + i), e.w_up);
      f(fmt::format("expert{}.w_down", exchange_.first_expert() + i), e.w_down);
    }
  }

 private:
  WorkloadSpec spec_;
  ExpertExchange<T> exchange_;
  OpLog* log_ = nullptr;
};

extern template class MoeMlp<float>;
extern template class MoeMlp<double>;

}  // namespace pipesim
