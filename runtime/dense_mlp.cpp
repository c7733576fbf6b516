// The dense SwiGLU MLP (see dense_mlp.hpp).
#include "runtime/dense_mlp.hpp"

#include <cmath>

#include "kernels/cpu/ops.hpp"
#include "runtime/tensor_math.hpp"

namespace pipesim {

using detail::input_grad;
using detail::matmul;
using detail::release;
using detail::weight_grad;
using std::size_t;

template <class T>
typename DenseMlp<T>::Params DenseMlp<T>::init(detail::LayerWeights& weights) const {
  const size_t H = size_t(spec_.hidden), F = size_t(spec_.ffn);
  const double in_h = 1 / std::sqrt(double(H)), in_f = 1 / std::sqrt(double(F));
  Params p;
  p.w_gate = weights.next<T>(H * F, 0.0, in_h);
  p.w_up = weights.next<T>(H * F, 0.0, in_h);
  p.w_down = weights.next<T>(F * H, 0.0, in_f);
  return p;
}

template <class T>
std::vector<T> DenseMlp<T>::forward(const Params& p, const std::vector<T>& x, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, F = spec_.ffn;
  s.gate = matmul(x, p.w_gate, R, H, F, log_);
  s.up = matmul(x, p.w_up, R, H, F, log_);
  s.act.resize(size_t(R) * size_t(F));
  {
    OpScope op(log_, "swiglu_forward", elementwise_work('F', double(R) * F, 3, sizeof(T)));  // gate, up -> act
    kernels::swiglu_forward(R * F, s.gate.data(), s.up.data(), s.act.data());
  }
  return matmul(s.act, p.w_down, R, F, H, log_);
}

template <class T>
std::vector<T> DenseMlp<T>::backward_input(const Params& p, const std::vector<T>& dy, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, F = spec_.ffn;
  std::vector<T> dact, dx;
  input_grad(dy, p.w_down, R, F, H, dact, false, log_);
  s.dgate.resize(size_t(R) * size_t(F));
  s.dup.resize(size_t(R) * size_t(F));
  {
    OpScope op(log_, "swiglu_backward", elementwise_work('I', double(R) * F, 5, sizeof(T)));  // gate, up, dact -> dgate, dup
    kernels::swiglu_backward(R * F, s.gate.data(), s.up.data(), dact.data(), s.dgate.data(), s.dup.data());
  }
  input_grad(s.dgate, p.w_gate, R, H, F, dx, false, log_);
  input_grad(s.dup, p.w_up, R, H, F, dx, true, log_);
  release(s.gate);  // W needs only the GEMMs' inputs and the gradients at their outputs
  release(s.up);
  return dx;
}

template <class T>
void DenseMlp<T>::backward_weight(const Saved& s, const std::vector<T>& x, const std::vector<T>& dy,
                                  Params& g) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden, F = spec_.ffn;
  weight_grad(s.act, dy, R, F, H, g.w_down, log_);
  weight_grad(x, s.dgate, R, H, F, g.w_gate, log_);
  weight_grad(x, s.dup, R, H, F, g.w_up, log_);
}

template class DenseMlp<float>;
template class DenseMlp<double>;

}  // namespace pipesim
