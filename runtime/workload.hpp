// The runtime's workload: a tiny transformer whose every layer has forward (F), backward-for-input (I) and
// backward-for-weights (W) as separate calls, so a schedule can run W long after I (ZeroBubble, DualPipe).
// A StageModel holds one pipeline stage's chunk of layers; weights depend only on (seed, layer), so any
// split into stages holds exactly the weights of the unsplit model, the oracle every schedule is checked
// against. Layer: h = x + Attention(RMSNorm(x)); y = h + SwiGLU_MLP(RMSNorm(h)).
#pragma once

#include <cstddef>
#include <cstdint>
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
};

// Throws Error (Input) naming the first field out of range.
void validate(const WorkloadSpec& spec);

template <class T>
class StageModel {
 public:
  // Layers [first_layer, first_layer + count) of the model (count may be 0). The first stage makes its own
  // input; the last stage ends with a final RMSNorm ("final_norm") and the loss
  //   L = mean over elements of (out - target)² / 2,  target deterministic from (seed, microbatch).
  StageModel(const WorkloadSpec& spec, int first_layer, int count, bool first_stage, bool last_stage);

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
  std::vector<std::pair<std::string, std::vector<T>>> gradients() const;
  std::vector<std::pair<std::string, std::span<T>>> parameters();
  void zero_gradients();
  std::size_t saved_microbatches() const { return saved_.size(); }  // F done, W not yet

 private:
  struct Params {  // one layer's weights, or its gradients; y = x·W, so W is [in x out]
    std::vector<T> attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down;
  };
  struct Saved {  // one layer, one micro-batch
    // from F: what I and W need; q/k/v/probs/gate/up are dropped after I
    std::vector<T> x, rstd1, n1, q, k, v, probs, ctx, h, rstd2, n2, gate, up, act;
    // from I: the output-side gradients W needs
    std::vector<T> dy, dgate, dup, dn2, dh, dq, dk, dv, dn1;
  };
  struct Microbatch {
    bool input_done = false;  // I ran; W may run
    std::vector<Saved> layers;
    std::vector<T> last, rstd_final, dout;  // last stage: final norm's input, its rstd, dL/d(its output)
  };

  template <class P, class F>
  static void for_each_tensor(P& p, F&& f);  // f(name, tensor) in the fixed order; P is Params or const Params
  std::vector<T> layer_forward(const Params& p, std::vector<T> x, Saved& s) const;
  std::vector<T> layer_backward_input(const Params& p, Saved& s, std::vector<T> dy) const;
  void layer_backward_weight(const Saved& s, Params& g) const;
  Microbatch& in_flight(int microbatch, const char* pass);

  WorkloadSpec spec_;
  int first_layer_, count_;
  bool first_stage_, last_stage_;
  std::vector<Params> params_, grads_;
  std::vector<T> final_norm_, final_norm_grad_;
  std::map<int, Microbatch> saved_;
  std::map<int, T> losses_;
};

extern template class StageModel<float>;
extern template class StageModel<double>;

}  // namespace pipesim
