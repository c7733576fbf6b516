// The runtime's workload: a tiny transformer whose every layer has forward (F), backward-for-input (I) and
// backward-for-weights (W) as separate calls, so a schedule can run W long after I (ZeroBubble, DualPipe).
// A StageModel holds one pipeline stage's chunk of layers; weights depend only on (seed, layer) (an
// expert's on (seed, layer, expert), whichever rank holds it), so any split into stages holds exactly the
// weights of the unsplit model, the oracle every schedule is checked against. Layer: h = x + Attention(RMSNorm(x)); y = h + MLP(RMSNorm(h)), the MLP being a SwiGLU, or with
// experts > 0 a mixture of SwiGLU experts (top-k softmax router) spread over `ep` expert-parallel ranks,
// each a data-parallel replica of the pipeline running its own micro-batches, that trade routed rows by
// all-to-all. Each routed row's arithmetic ignores the rows batched with it, and each token combines its
// slots in order, so the losses do not depend on ep or on which micro-batches run together.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace pipesim {

struct WorkloadSpec {
  int layers = 4;
  int hidden = 32;
  int heads = 4;  // divides hidden
  int ffn = 64;   // SwiGLU inner width
  int seq = 16;
  int micro_batch = 1;  // sequences per micro-batch
  std::uint64_t seed = 1;
  int experts = 0;            // 0: a dense SwiGLU MLP; 8: every layer's MLP is a mixture of 8 experts
  int experts_per_token = 2;  // top-k
  int expert_ffn = 32;        // each expert's SwiGLU inner width
  int ep = 1;                 // expert-parallel group size; divides experts
  int ep_rank = 0;            // this replica's place in the group; holds experts [r·experts/ep, (r+1)·experts/ep)
};

// Expert-parallel all-to-all: buffers[p] goes to EP rank p; returns what each EP rank sent here, in rank
// order (element counts may differ). With ep = 1 the identity. Called in lockstep by all EP ranks.
template <class T>
using AllToAll = std::function<std::vector<std::vector<T>>(std::vector<std::vector<T>>)>;

// Throws Error (Input) naming the first field out of range.
void validate(const WorkloadSpec& spec);

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
  struct Expert {
    std::vector<T> w_gate, w_up, w_down;
  };
  struct Params {  // one layer's weights, or its gradients; y = x·W, so W is [in x out]
    std::vector<T> attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down;  // w_*: dense MLP only
    std::vector<T> router;                                                     // [hidden x experts]
    std::vector<Expert> experts;                                               // the local ones
  };
  struct ExpertRows {  // the rows one local expert processes for one micro-batch step, grouped in the
                       // order (source EP rank, token, slot); from[i] = (source, position in its buffer)
    std::vector<std::pair<int, int>> from;
    std::vector<T> x, gate, up, act;  // from F; gate/up dropped after I
    std::vector<T> dout, dgate, dup;  // from I
  };
  struct Moe {  // one layer, one micro-batch
    std::vector<int> expert;           // [rows x k]: each token's chosen experts, slot order
    std::vector<T> probs, gates, out;  // router probabilities, renormalised gates, expert outputs; to I
    std::vector<T> dlogits;            // from I, for the router's W
    std::vector<int> received;         // rows received from each EP rank in the dispatch
    std::vector<ExpertRows> local;     // per local expert
  };
  struct Saved {  // one layer, one micro-batch
    // from F: what I and W need; q/k/v/probs/gate/up are dropped after I
    std::vector<T> x, rstd1, n1, q, k, v, probs, ctx, h, rstd2, n2, gate, up, act;
    // from I: the output-side gradients W needs
    std::vector<T> dy, dgate, dup, dn2, dh, dq, dk, dv, dn1;
    Moe moe;  // experts > 0 only
  };
  struct Microbatch {
    bool input_done = false;  // I ran; W may run
    std::vector<Saved> layers;
    std::vector<T> last, rstd_final, dout;  // last stage: final norm's input, its rstd, dL/d(its output)
  };

  template <class P, class F>
  void for_each_tensor(P& p, F&& f) const;  // f(name, tensor) in the fixed order; P is Params or const Params
  std::vector<T> layer_forward(const Params& p, std::vector<T> x, Saved& s) const;
  std::vector<T> moe_forward(const Params& p, Saved& s) const;  // RMSNorm(h) -> MoE output, no residual
  std::vector<T> layer_backward_input(const Params& p, Saved& s, std::vector<T> dy) const;
  std::vector<T> moe_backward_input(const Params& p, Saved& s) const;  // s.dy -> grad at RMSNorm(h)
  std::vector<std::vector<T>> trade(std::vector<std::vector<T>> buffers, const char* what) const;
  int owner(int expert) const { return expert / (spec_.experts / spec_.ep); }
  void layer_backward_weight(const Saved& s, Params& g) const;
  Microbatch& in_flight(int microbatch, const char* pass);

  WorkloadSpec spec_;
  int first_layer_, count_;
  bool first_stage_, last_stage_;
  std::vector<Params> params_, grads_;
  std::vector<T> final_norm_, final_norm_grad_;
  std::map<int, Microbatch> saved_;
  std::map<int, T> losses_;
  AllToAll<T> exchange_;
  int first_expert_ = 0, local_experts_ = 0;  // this EP rank's experts: [first_expert_, + local_experts_)
};

extern template class StageModel<float>;
extern template class StageModel<double>;

}  // namespace pipesim
