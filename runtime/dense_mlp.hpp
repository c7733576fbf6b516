// The dense MLP of a transformer layer: a SwiGLU, y = (silu(x·W_gate) ⊙ x·W_up)·W_down, with its forward
// (F), backward-for-input (I) and backward-for-weights (W) apart. Stateless: a StageModel keeps each
// layer's Params and each micro-batch's Saved and passes them in.
#pragma once

#include <vector>

#include "runtime/op_log.hpp"
#include "runtime/workload.hpp"

namespace pipesim {
namespace detail {
class LayerWeights;
}

template <class T>
class DenseMlp {
 public:
  struct Params {  // y = x·W, so W is [in x out]
    std::vector<T> w_gate, w_up, w_down;
  };
  struct Saved {  // one micro-batch
    std::vector<T> gate, up, act;  // from F; gate and up are dropped after I
    std::vector<T> dgate, dup;     // from I, for W
  };

  explicit DenseMlp(const WorkloadSpec& spec) : spec_(spec) {}
  void set_op_log(OpLog* log) { log_ = log; }  // each GEMM and SwiGLU an operator of `log` (op_log.hpp)
  Params init(detail::LayerWeights& weights) const;  // draws the layer's next three weight tensors
  // x = RMSNorm(h) [rows x hidden] -> the MLP's output (no residual).
  std::vector<T> forward(const Params& p, const std::vector<T>& x, Saved& s) const;
  // dy at the output -> the gradient at x.
  std::vector<T> backward_input(const Params& p, const std::vector<T>& dy, Saved& s) const;
  void backward_weight(const Saved& s, const std::vector<T>& x, const std::vector<T>& dy, Params& grads) const;

  template <class P, class F>  // f(name, tensor) in the fixed order; P is Params or const Params
  static void for_each_tensor(P& p, F&& f) {
    f("w_gate", p.w_gate);
    f("w_up", p.w_up);
    f("w_down", p.w_down);
  }

 private:
  WorkloadSpec spec_;
  OpLog* log_ = nullptr;
};

extern template class DenseMlp<float>;
extern template class DenseMlp<double>;

}  // namespace pipesim
