// One pipeline stage's chunk of the runtime's tiny transformer (see workload.hpp): layers
// h = x + Attention(RMSNorm(x)); y = h + MLP(RMSNorm(h)), the MLP a DenseMlp or, with experts > 0, a MoeMlp;
// the first stage makes its input, the last adds a final RMSNorm and the loss. Weights depend only on
// (seed, layer) (an expert's on (seed, layer, expert), whichever rank holds it), so any split into stages
// holds exactly the weights of the unsplit model, the oracle every schedule is checked against.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "runtime/dense_mlp.hpp"
#include "runtime/moe_mlp.hpp"
#include "runtime/workload.hpp"

namespace pipesim {

template <class T>
class StageModel {
 public:
  // Layers [first_layer, first_layer + count) of the model (count may be 0). The first stage makes its own
  // input; the last stage ends with a final RMSNorm ("final_norm") and the loss
  //   L = mean over elements of (out - target)² / 2,  target deterministic from (seed, microbatch).
  // With experts > 0, every F and I of a stage with layers calls `exchange` twice per layer (F: dispatch,
  // combine; I: output gradients out, input gradients back), in the same order on every EP rank; W never
  // does. An empty exchange is the identity, valid only with ep = 1.
  StageModel(const WorkloadSpec& spec, int first_layer, int count, bool first_stage, bool last_stage,
             AllToAll<T> exchange = {});

  // -> output activation [micro_batch·seq x hidden], or on the last stage a 1-element tensor holding the loss.
  // The first stage ignores `input` and uses the micro-batch's synthetic input.
  std::vector<T> forward(int microbatch, const std::vector<T>& input);
  // grad of the loss w.r.t. this stage's output (ignored on the last stage, which starts from its loss) ->
  // grad w.r.t. its input (empty on the first stage). Keeps what backward_weight needs.
  std::vector<T> backward_input(int microbatch, const std::vector<T>& grad_output);
  // Accumulates this micro-batch's weight gradients (all of them, norm weights included, are computed here
  // and only here) and frees its saved tensors.
  void backward_weight(int microbatch);
  // B: backward_input then backward_weight.
  std::vector<T> backward(int microbatch, const std::vector<T>& grad_output);

  // Every kernel call from now on is an operator of `log` (op_log.hpp); nullptr: none (the default).
  void set_op_log(OpLog* log);

  T loss(int microbatch) const;  // last stage only, after forward; kept after the micro-batch's W
  // Gradients named "layer{L}.{name}" (global L), layer by layer in a fixed order, then "final_norm" on the
  // last stage. parameters() lists the weights themselves, in the same order, for tests and optimizers.
  // With experts, a layer's MLP tensors are "router" and "expert{e}.w_gate", ".w_up", ".w_down" for the
  // experts this EP rank holds (global e); the rest are partial sums over this rank's micro-batches.
  std::vector<std::pair<std::string, std::vector<T>>> gradients() const;
  std::vector<std::pair<std::string, std::span<T>>> parameters();
  void zero_gradients();
  std::size_t saved_microbatches() const { return saved_.size(); }  // F done, W not yet
  // Per token of a micro-batch in flight, the experts layer `layer` (global) routed it to, slot order
  // [micro_batch·seq x experts_per_token]; for tests, which need the routing unchanged under perturbation.
  std::vector<int> routed_experts(int microbatch, int layer) const;

 private:
  struct Params {  // one layer's weights, or its gradients; y = x·W, so W is [in x out]
    std::vector<T> attn_norm, wq, wk, wv, wo, mlp_norm;
    typename DenseMlp<T>::Params dense;  // experts == 0
    typename MoeMlp<T>::Params moe;      // experts > 0
  };
  struct Saved {  // one layer, one micro-batch
    // from F: what I and W need; q/k/v/probs are dropped after I
    std::vector<T> x, rstd1, n1, q, k, v, probs, ctx, h, rstd2, n2;
    // from I: the output-side gradients W needs
    std::vector<T> dy, dn2, dh, dq, dk, dv, dn1;
    typename DenseMlp<T>::Saved dense;
    typename MoeMlp<T>::Saved moe;
  };
  struct Microbatch {
    bool input_done = false;  // I ran; W may run
    std::vector<Saved> layers;
    std::vector<T> last, rstd_final, dout;  // last stage: final norm's input, its rstd, dL/d(its output)
  };

  template <class P, class F>
  void for_each_tensor(P& p, F&& f) const;  // f(name, tensor) in the fixed order; P is Params or const Params
  std::vector<T> layer_forward(const Params& p, std::vector<T> x, Saved& s) const;
  std::vector<T> layer_backward_input(const Params& p, Saved& s, std::vector<T> dy) const;
  void layer_backward_weight(const Saved& s, Params& g) const;
  Microbatch& in_flight(int microbatch, const char* pass);
  void add(const T* a, const T* b, T* out, char pass) const;  // out = a + b over [rows x hidden], an operator

  WorkloadSpec spec_;
  int first_layer_, count_;
  bool first_stage_, last_stage_;
  DenseMlp<T> dense_;
  std::optional<MoeMlp<T>> moe_;  // experts > 0
  std::vector<Params> params_, grads_;
  std::vector<T> final_norm_, final_norm_grad_;
  std::map<int, Microbatch> saved_;
  std::map<int, T> losses_;
  OpLog* log_ = nullptr;
};

extern template class StageModel<float>;
extern template class StageModel<double>;

}  // namespace pipesim
