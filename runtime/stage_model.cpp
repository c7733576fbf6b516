// One stage of the tiny transformer (see stage_model.hpp): attention, norms and residuals here, the MLP in
// DenseMlp or MoeMlp, the final norm and the loss on the last stage.
#include "runtime/stage_model.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cpu/ops.hpp"
#include "runtime/tensor_math.hpp"

namespace pipesim {

using detail::input_grad;
using detail::kNormEps;
using detail::matmul;
using detail::Purpose;
using detail::random_tensor;
using detail::release;
using detail::weight_grad;
using std::size_t;
namespace k = kernels;

template <class T>
StageModel<T>::StageModel(const WorkloadSpec& spec, int first_layer, int count, bool first_stage, bool last_stage,
                          AllToAll<T> exchange)
    : spec_(spec),
      first_layer_(first_layer),
      count_(count),
      first_stage_(first_stage),
      last_stage_(last_stage),
      dense_(spec) {
  validate(spec);
  if (spec.experts > 0)
    moe_.emplace(spec, std::move(exchange),
                 fmt::format("StageModel layers [{}, {})", first_layer, first_layer + count));
  if (first_layer < 0 || count < 0 || first_layer + count > spec.layers)
    throw Error(fmt::format("StageModel: layers [{}, {}) outside the model's {} layers", first_layer,
                            first_layer + count, spec.layers),
                Error::Kind::Internal);
  const size_t H = size_t(spec.hidden);
  const double in_h = 1 / std::sqrt(double(H));
  for (int l = first_layer; l < first_layer + count; ++l) {
    detail::LayerWeights init(spec.seed, l);  // keyed by the global layer index alone
    Params& p = params_.emplace_back();
    p.attn_norm = init.next<T>(H, 1.0, 0.1);  // near 1 but not 1, so the norm weights' gradients are exercised
    p.wq = init.next<T>(H * H, 0.0, in_h);
    p.wk = init.next<T>(H * H, 0.0, in_h);
    p.wv = init.next<T>(H * H, 0.0, in_h);
    p.wo = init.next<T>(H * H, 0.0, in_h);
    p.mlp_norm = init.next<T>(H, 1.0, 0.1);
    if (moe_)
      p.moe = moe_->init(l);
    else
      p.dense = dense_.init(init);
  }
  if (last_stage) final_norm_ = random_tensor<T>(detail::Stream(spec.seed, Purpose::FinalNorm, 0, 0), H, 1.0, 0.1);
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
  if (moe_)
    moe_->for_each_tensor(p.moe, f);
  else
    DenseMlp<T>::for_each_tensor(p.dense, f);
}

template <class T>
std::vector<T> StageModel<T>::layer_forward(const Params& p, std::vector<T> x, Saved& s) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden;
  const size_t RH = size_t(R) * H;
  const k::AttentionShape shape{spec_.micro_batch, spec_.seq, spec_.heads, H / spec_.heads};
  s.x = std::move(x);
  s.rstd1.resize(size_t(R));
  s.n1.resize(RH);
  {
    OpScope op(log_, "rmsnorm_forward", rmsnorm_work('F', R, H, sizeof(T)));
    k::rmsnorm_forward(R, H, s.x.data(), p.attn_norm.data(), T(kNormEps), s.n1.data(), s.rstd1.data());
  }
  s.q = matmul(s.n1, p.wq, R, H, H, log_);
  s.k = matmul(s.n1, p.wk, R, H, H, log_);
  s.v = matmul(s.n1, p.wv, R, H, H, log_);
  s.probs.resize(size_t(shape.probs_size()));
  s.ctx.resize(RH);
  {
    OpScope op(log_, "attention_forward", attention_work('F', shape, sizeof(T)));
    k::attention_forward(shape, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), s.ctx.data());
  }
  s.h = matmul(s.ctx, p.wo, R, H, H, log_);
  add(s.x.data(), s.h.data(), s.h.data(), 'F');
  s.rstd2.resize(size_t(R));
  s.n2.resize(RH);
  {
    OpScope op(log_, "rmsnorm_forward", rmsnorm_work('F', R, H, sizeof(T)));
    k::rmsnorm_forward(R, H, s.h.data(), p.mlp_norm.data(), T(kNormEps), s.n2.data(), s.rstd2.data());
  }
  auto y = moe_ ? moe_->forward(p.moe, s.n2, s.moe) : dense_.forward(p.dense, s.n2, s.dense);
  add(s.h.data(), y.data(), y.data(), 'F');
  return y;
}

template <class T>
std::vector<T> StageModel<T>::layer_backward_input(const Params& p, Saved& s, std::vector<T> dy) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden;
  const size_t RH = size_t(R) * H;
  const k::AttentionShape shape{spec_.micro_batch, spec_.seq, spec_.heads, H / spec_.heads};
  s.dy = std::move(dy);
  s.dn2 = moe_ ? moe_->backward_input(p.moe, s.dy, s.moe) : dense_.backward_input(p.dense, s.dy, s.dense);
  s.dh.resize(RH);
  {
    OpScope op(log_, "rmsnorm_backward_input", rmsnorm_work('I', R, H, sizeof(T)));
    k::rmsnorm_backward_input(R, H, s.h.data(), p.mlp_norm.data(), s.rstd2.data(), s.dn2.data(), s.dh.data());
  }
  add(s.dh.data(), s.dy.data(), s.dh.data(), 'I');
  std::vector<T> dctx;
  input_grad(s.dh, p.wo, R, H, H, dctx, false, log_);
  s.dq.resize(RH);
  s.dk.resize(RH);
  s.dv.resize(RH);
  {
    OpScope op(log_, "attention_backward", attention_work('I', shape, sizeof(T)));
    k::attention_backward(shape, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), dctx.data(), s.dq.data(),
                          s.dk.data(), s.dv.data());
  }
  input_grad(s.dq, p.wq, R, H, H, s.dn1, false, log_);
  input_grad(s.dk, p.wk, R, H, H, s.dn1, true, log_);
  input_grad(s.dv, p.wv, R, H, H, s.dn1, true, log_);
  std::vector<T> dx(RH);
  {
    OpScope op(log_, "rmsnorm_backward_input", rmsnorm_work('I', R, H, sizeof(T)));
    k::rmsnorm_backward_input(R, H, s.x.data(), p.attn_norm.data(), s.rstd1.data(), s.dn1.data(), dx.data());
  }
  add(dx.data(), s.dh.data(), dx.data(), 'I');
  // W needs only the layer inputs of each GEMM and norm, and the gradients at their outputs.
  for (auto* t : {&s.q, &s.k, &s.v, &s.probs}) release(*t);
  return dx;
}

template <class T>
void StageModel<T>::layer_backward_weight(const Saved& s, Params& g) const {
  const int R = spec_.micro_batch * spec_.seq, H = spec_.hidden;
  if (moe_)
    moe_->backward_weight(s.moe, s.n2, g.moe);
  else
    dense_.backward_weight(s.dense, s.n2, s.dy, g.dense);
  {
    OpScope op(log_, "rmsnorm_backward_weight", rmsnorm_work('W', R, H, sizeof(T)));
    k::rmsnorm_backward_weight(R, H, s.h.data(), s.rstd2.data(), s.dn2.data(), g.mlp_norm.data());
  }
  weight_grad(s.ctx, s.dh, R, H, H, g.wo, log_);
  weight_grad(s.n1, s.dq, R, H, H, g.wq, log_);
  weight_grad(s.n1, s.dk, R, H, H, g.wk, log_);
  weight_grad(s.n1, s.dv, R, H, H, g.wv, log_);
  OpScope op(log_, "rmsnorm_backward_weight", rmsnorm_work('W', R, H, sizeof(T)));
  k::rmsnorm_backward_weight(R, H, s.x.data(), s.rstd1.data(), s.dn1.data(), g.attn_norm.data());
}

template <class T>
void StageModel<T>::set_op_log(OpLog* log) {
  log_ = log;
  dense_.set_op_log(log);
  if (moe_) moe_->set_op_log(log);
}

template <class T>
void StageModel<T>::add(const T* a, const T* b, T* out, char pass) const {
  const int RH = spec_.micro_batch * spec_.seq * spec_.hidden;
  OpScope op(log_, "add", elementwise_work(pass, RH, 3, sizeof(T)));
  k::add(RH, a, b, out);
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
    x = random_tensor<T>(detail::Stream(spec_.seed, Purpose::Input, std::uint64_t(microbatch), 0), RH, 0.0, 1.0);
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
  {
    OpScope op(log_, "rmsnorm_forward", rmsnorm_work('F', R, H, sizeof(T)));
    k::rmsnorm_forward(R, H, m.last.data(), final_norm_.data(), T(kNormEps), out.data(), m.rstd_final.data());
  }
  auto target = random_tensor<T>(detail::Stream(spec_.seed, Purpose::Target, std::uint64_t(microbatch), 0), RH, 0.0, 1.0);
  // dL/dout is a by-product of the loss; keeping it instead of the output costs nothing extra.
  T squares = 0;
  m.dout.resize(RH);
  {
    OpScope op(log_, "mse_loss", elementwise_work('F', double(RH), 3, sizeof(T)));  // out, target -> dout
    for (size_t i = 0; i < RH; ++i) {
      T d = out[i] - target[i];
      squares += d * d;
      m.dout[i] = d / T(RH);
    }
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
    OpScope op(log_, "rmsnorm_backward_input", rmsnorm_work('I', R, H, sizeof(T)));
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
  if (last_stage_) {
    OpScope op(log_, "rmsnorm_backward_weight", rmsnorm_work('W', R, H, sizeof(T)));
    k::rmsnorm_backward_weight(R, H, m.last.data(), m.rstd_final.data(), m.dout.data(), final_norm_grad_.data());
  }
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
