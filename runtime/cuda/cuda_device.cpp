// The CUDA device's stage (see cuda_device.hpp): StageModel's layer, forward, backward-for-input and
// backward-for-weights, written against device buffers. Comments name the CPU lines each step mirrors.
#include "runtime/cuda/cuda_device.hpp"

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cuda/buffer.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/ops.hpp"
#include "kernels/cuda/attention.hpp"
#include "runtime/cuda/cuda_moe_ops.hpp"
#include "runtime/cuda/cupti_trace.hpp"
#include "runtime/cuda/sm_partition.hpp"
#include "runtime/cuda/timed_gemm.hpp"
#include "runtime/device_moe.hpp"
#include "runtime/op_log.hpp"
#include "runtime/stage_model.hpp"
#include "runtime/tensor_math.hpp"

namespace pipesim {
namespace {

using cuda::DeviceBuffer;
using std::size_t;

// A tensor handed to the executor: freed on its stream when the last holder lets go, the stream kept alive
// until then. Whoever uses it on another stream or the host has finished by then: the executor ends each
// action with its stream's work, the comms wait for their copies, and a stage waits for its input's copy.
template <class T>
Buffer<T> to_buffer(DeviceBuffer<T>&& tensor, std::shared_ptr<GpuStream> keep) {
  auto size = tensor.size();
  auto stream = tensor.stream();
  bool ordered = tensor.ordered();
  return Buffer<T>(std::shared_ptr<T>(tensor.release(), [keep = std::move(keep), stream, ordered](T* p) {
                     DeviceBuffer<T>::free(p, stream, ordered);
                   }),
                   size);
}

template <class T>
class CudaStage : public StageCompute<T> {
 public:
  CudaStage(const WorkloadSpec& spec, int first, int count, bool first_stage, bool last_stage, AllToAll<T> exchange,
            std::shared_ptr<GpuStream> stream, cuda::GemmMath math, OpLog* log)
      : spec_(spec), first_(first), count_(count), first_stage_(first_stage), last_stage_(last_stage),
        stream_(std::move(stream)), blas_(math), log_(log) {
    if (spec.experts > 0)
      moe_.emplace(spec, std::move(exchange), fmt::format("CUDA stage layers [{}, {})", first, first + count),
                   CudaMoeOps<T>(stream_->get(), &blas_), log_);
    // The CPU stage draws the initial weights; they are uploaded in its order, which is also gradients()'s.
    StageModel<T> init(spec, first, count, first_stage, last_stage, moe_ ? AllToAll<T>([](auto rows) { return rows; })
                                                                        : AllToAll<T>{});
    layers_.resize(static_cast<size_t>(count));
    for (auto& [name, values] : init.parameters()) {
      std::vector<T> host(values.begin(), values.end());
      names_.push_back(name);
      if (name == "final_norm") {
        final_norm_ = DeviceBuffer<T>(host);
        final_norm_grad_ = DeviceBuffer<T>(host.size());
        continue;
      }
      auto dot = name.find('.');
      int layer = std::stoi(name.substr(5, dot - 5)) - first;
      auto tensor = name.substr(dot + 1);
      auto& L = layers_[static_cast<size_t>(layer)];
      L.weights[tensor] = DeviceBuffer<T>(host);
      L.grads[tensor] = DeviceBuffer<T>(host.size());
    }
    if (moe_)
      for (auto& L : layers_) point_at_moe_tensors(L);
    zero_gradients();
  }

  Buffer<T> forward(int mb, const Buffer<T>& input) override {
    const int R = rows(), H = spec_.hidden;
    const size_t RH = size_t(R) * H;
    if (saved_.count(mb)) misuse("forward", mb, "already in flight (forward twice before its W)");
    DeviceBuffer<T> x = buffer(RH);
    if (first_stage_) {  // StageModel::forward: the micro-batch's synthetic input
      copy(x, synthetic(detail::Purpose::Input, mb), "copy the synthetic input");
    } else {
      if (input.size() != RH || input.memory() != Memory::Gpu)
        misuse("forward", mb, fmt::format("input has {} elements, expected {} in GPU memory", input.size(), RH));
      copy(x, input.data(), "copy input");
    }
    Microbatch m;
    m.layers.resize(static_cast<size_t>(count_));
    for (int l = 0; l < count_; ++l) x = layer_forward(layers_[size_t(l)], std::move(x), m.layers[size_t(l)]);
    if (!last_stage_) {
      saved_.emplace(mb, std::move(m));
      return to_buffer(std::move(x), stream_);
    }
    m.last = std::move(x);
    m.rstd_final = buffer(size_t(R));
    DeviceBuffer<T> out = buffer(RH);
    const T* target = synthetic(detail::Purpose::Target, mb);
    {
      OpScope op(log_, "rmsnorm_forward", rmsnorm_work('F', R, H, sizeof(T)));
      cuda::rmsnorm_forward(R, H, m.last.data(), final_norm_.data(), T(detail::kNormEps), out.data(), m.rstd_final.data(),
                            stream());
    }
    m.dout = buffer(RH);
    DeviceBuffer<T> loss = buffer(1);
    {
      OpScope op(log_, "mse_loss", elementwise_work('F', double(RH), 3, sizeof(T)));
      cuda::mse_loss(int(RH), out.data(), target, m.dout.data(), loss.data(), stream());
    }
    synchronize();  // the loss is read now
    losses_[mb] = loss.download()[0];
    saved_.emplace(mb, std::move(m));
    return to_buffer(std::move(loss), stream_);
  }

  Buffer<T> backward_input(int mb, const Buffer<T>& grad_output) override {
    const int R = rows(), H = spec_.hidden;
    const size_t RH = size_t(R) * H;
    auto& m = in_flight(mb, "backward_input");
    if (m.input_done) misuse("backward_input", mb, "ran twice");
    DeviceBuffer<T> dy = buffer(RH);
    if (last_stage_) {
      {
        OpScope op(log_, "rmsnorm_backward_input", rmsnorm_work('I', R, H, sizeof(T)));
        cuda::rmsnorm_backward_input(R, H, m.last.data(), final_norm_.data(), m.rstd_final.data(), m.dout.data(), dy.data(),
                                     stream());
      }
    } else {
      if (grad_output.size() != RH || grad_output.memory() != Memory::Gpu)
        misuse("backward_input", mb,
               fmt::format("gradient has {} elements, expected {} in GPU memory", grad_output.size(), RH));
      copy(dy, grad_output.data(), "copy gradient");
    }
    for (int l = count_ - 1; l >= 0; --l) dy = layer_backward_input(layers_[size_t(l)], m.layers[size_t(l)], std::move(dy));
    m.input_done = true;
    if (first_stage_) return {};
    return to_buffer(std::move(dy), stream_);
  }

  void backward_weight(int mb) override {
    const int R = rows(), H = spec_.hidden;
    auto& m = in_flight(mb, "backward_weight");
    if (!m.input_done) misuse("backward_weight", mb, "before its backward_input");
    for (int l = 0; l < count_; ++l) layer_backward_weight(m.layers[size_t(l)], layers_[size_t(l)]);
    if (last_stage_)
      {
        OpScope op(log_, "rmsnorm_backward_weight", rmsnorm_work('W', R, H, sizeof(T)));
        cuda::rmsnorm_backward_weight(R, H, m.last.data(), m.rstd_final.data(), m.dout.data(), final_norm_grad_.data(),
                                      stream());
      }
    saved_.erase(mb);  // freed in stream order, after the work above
  }

  T loss(int mb) const override {
    auto it = losses_.find(mb);
    if (!last_stage_ || it == losses_.end())
      throw Error(fmt::format("CUDA stage layers [{}, {}): no loss for micro-batch {}", first_, first_ + count_, mb),
                  Error::Kind::Internal);
    return it->second;
  }

  std::vector<std::pair<std::string, std::vector<T>>> gradients() const override {
    cuda::check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    std::vector<std::pair<std::string, std::vector<T>>> out;
    for (auto& name : names_) {
      if (name == "final_norm") {
        out.emplace_back(name, final_norm_grad_.download());
        continue;
      }
      auto dot = name.find('.');
      auto& L = layers_[static_cast<size_t>(std::stoi(name.substr(5, dot - 5)) - first_)];
      out.emplace_back(name, L.grads.at(name.substr(dot + 1)).download());
    }
    return out;
  }

  void zero_gradients() override {
    for (auto& L : layers_) {
      for (auto& [name, g] : L.grads)
        cuda::check(cudaMemsetAsync(g.data(), 0, g.size() * sizeof(T), stream()), "cudaMemset");
    }
    if (final_norm_grad_.size())
      cuda::check(cudaMemsetAsync(final_norm_grad_.data(), 0, final_norm_grad_.size() * sizeof(T), stream()),
                  "cudaMemset");
    synchronize();
  }

  Buffer<T> allocate(std::size_t count) override { return to_buffer(buffer(count), stream_); }
  void synchronize() override { cuda::check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }

 private:
  using Moe = DeviceMoe<CudaMoeOps<T>>;
  struct Layer {
    // attn_norm, wq, wk, wv, wo, mlp_norm, then w_gate, w_up, w_down or router, expert{e}.w_gate, ...
    std::map<std::string, DeviceBuffer<T>> weights, grads;
    typename Moe::Weights moe;  // pointers into weights and grads
    typename Moe::Grads moe_grads;
    const T* w(const std::string& name) const { return find(weights, name).data(); }
    T* g(const std::string& name) { return find(grads, name).data(); }
    template <class Map>
    static auto& find(Map& tensors, const std::string& name) {
      auto it = tensors.find(name);
      if (it == tensors.end()) throw Error("CUDA stage: no tensor " + name, Error::Kind::Internal);
      return it->second;
    }
  };
  struct Saved {
    DeviceBuffer<T> x, rstd1, n1, q, k, v, probs, ctx, h, rstd2, n2, gate, up, act;  // from F
    DeviceBuffer<T> dy, dn2, dh, dq, dk, dv, dn1, dgate, dup;                        // from I
    typename Moe::Saved moe;
  };
  struct Microbatch {
    bool input_done = false;
    std::vector<Saved> layers;
    DeviceBuffer<T> last, rstd_final, dout;
  };

  int rows() const { return spec_.micro_batch * spec_.seq; }
  cudaStream_t stream() const { return stream_->get(); }
  DeviceBuffer<T> buffer(size_t count) const { return DeviceBuffer<T>(count, stream()); }
  // A host tensor on the device (waits: the host vector may go once this returns).
  DeviceBuffer<T> upload(const std::vector<T>& host) {
    auto b = buffer(host.size());
    if (!host.empty())
      cuda::check(cudaMemcpyAsync(b.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream()),
                  "upload");
    synchronize();
    return b;
  }
  // Device to device into `to` (its whole size). Waits, so that the source's holder may free it on return.
  void copy(DeviceBuffer<T>& to, const T* from, const char* what) {
    cuda::check(cudaMemcpyAsync(to.data(), from, to.size() * sizeof(T), cudaMemcpyDeviceToDevice, stream()), what);
    synchronize();
  }
  // The micro-batch's synthetic input or target (StageModel's keyed streams), drawn on the host once and
  // kept on the device: drawing a million numbers on the host in every F would time the host, not the GPU.
  const T* synthetic(detail::Purpose purpose, int mb) {
    auto& cache = purpose == detail::Purpose::Input ? inputs_ : targets_;
    auto it = cache.find(mb);
    if (it == cache.end())
      it = cache
               .emplace(mb, upload(detail::random_tensor<T>(detail::Stream(spec_.seed, purpose, std::uint64_t(mb), 0),
                                                            size_t(rows()) * size_t(spec_.hidden), 0.0, 1.0)))
               .first;
    return it->second.data();
  }
  [[noreturn]] void misuse(const char* pass, int mb, const std::string& what) const {
    throw Error(fmt::format("CUDA stage layers [{}, {}): {} of micro-batch {}: {}", first_, first_ + count_, pass, mb, what),
                Error::Kind::Internal);
  }
  Microbatch& in_flight(int mb, const char* pass) {
    auto it = saved_.find(mb);
    if (it == saved_.end()) misuse(pass, mb, "without its forward");
    return it->second;
  }

  // tensor_math.hpp's three GEMM shapes on the GPU.
  void gemm(char pass, const kernels::GemmParams<T>& p) { timed_gemm(blas_, log_, pass, p, stream()); }
  DeviceBuffer<T> matmul(const T* a, const T* b, int r, int inner, int cols) {
    DeviceBuffer<T> c = buffer(size_t(r) * size_t(cols));
    gemm('F', detail::forward_gemm(a, b, r, inner, cols, c.data()));
    return c;
  }
  void input_grad(const T* dy, const T* w, int r, int in, int out, T* c, bool accumulate) {
    gemm('I', detail::input_grad_gemm(dy, w, r, in, out, c, accumulate));
  }
  void weight_grad(const T* x, const T* dy, int r, int in, int out, T* dw) {
    gemm('W', detail::weight_grad_gemm(x, dy, r, in, out, dw));
  }

  // out = a + b over [rows x hidden], an operator of the log.
  void add(const T* a, const T* b, T* out, char pass) {
    const int RH = rows() * spec_.hidden;
    OpScope op(log_, "add", elementwise_work(pass, RH, 3, sizeof(T)));
    cuda::add(RH, a, b, out, stream());
  }

  kernels::AttentionShape shape() const {
    return {spec_.micro_batch, spec_.seq, spec_.heads, spec_.hidden / spec_.heads};
  }

  // StageModel::layer_forward.
  DeviceBuffer<T> layer_forward(Layer& p, DeviceBuffer<T> x, Saved& s) {
    const int R = rows(), H = spec_.hidden, F = spec_.ffn;
    const size_t RH = size_t(R) * H;
    auto sh = shape();
    s.x = std::move(x);
    s.rstd1 = buffer(size_t(R));
    s.n1 = buffer(RH);
    {
      OpScope op(log_, "rmsnorm_forward", rmsnorm_work('F', R, H, sizeof(T)));
      cuda::rmsnorm_forward(R, H, s.x.data(), p.w("attn_norm"), T(detail::kNormEps), s.n1.data(), s.rstd1.data(), stream());
    }
    s.q = matmul(s.n1.data(), p.w("wq"), R, H, H);
    s.k = matmul(s.n1.data(), p.w("wk"), R, H, H);
    s.v = matmul(s.n1.data(), p.w("wv"), R, H, H);
    s.probs = buffer(size_t(sh.probs_size()));
    s.ctx = buffer(RH);
    {
      OpScope op(log_, "attention_forward", attention_work('F', sh, sizeof(T)));
      cuda::attention_forward(blas_, sh, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), s.ctx.data(), stream());
    }
    s.h = matmul(s.ctx.data(), p.w("wo"), R, H, H);
    add(s.x.data(), s.h.data(), s.h.data(), 'F');
    s.rstd2 = buffer(size_t(R));
    s.n2 = buffer(RH);
    {
      OpScope op(log_, "rmsnorm_forward", rmsnorm_work('F', R, H, sizeof(T)));
      cuda::rmsnorm_forward(R, H, s.h.data(), p.w("mlp_norm"), T(detail::kNormEps), s.n2.data(), s.rstd2.data(), stream());
    }
    DeviceBuffer<T> y;
    if (moe_) {
      y = moe_->forward(p.moe, s.n2.data(), s.moe);
    } else {  // DenseMlp::forward
      s.gate = matmul(s.n2.data(), p.w("w_gate"), R, H, F);
      s.up = matmul(s.n2.data(), p.w("w_up"), R, H, F);
      s.act = buffer(size_t(R) * F);
      {
        OpScope op(log_, "swiglu_forward", elementwise_work('F', double(R) * F, 3, sizeof(T)));
        cuda::swiglu_forward(R * F, s.gate.data(), s.up.data(), s.act.data(), stream());
      }
      y = matmul(s.act.data(), p.w("w_down"), R, F, H);
    }
    add(s.h.data(), y.data(), y.data(), 'F');
    return y;
  }

  // StageModel::layer_backward_input.
  DeviceBuffer<T> layer_backward_input(Layer& p, Saved& s, DeviceBuffer<T> dy) {
    const int R = rows(), H = spec_.hidden, F = spec_.ffn;
    const size_t RH = size_t(R) * H;
    auto sh = shape();
    s.dy = std::move(dy);
    if (moe_) {
      s.dn2 = moe_->backward_input(p.moe, s.dy.data(), s.moe);
    } else {  // DenseMlp::backward_input
      DeviceBuffer<T> dact = buffer(size_t(R) * F);
      input_grad(s.dy.data(), p.w("w_down"), R, F, H, dact.data(), false);
      s.dgate = buffer(size_t(R) * F);
      s.dup = buffer(size_t(R) * F);
      {
        OpScope op(log_, "swiglu_backward", elementwise_work('I', double(R) * F, 5, sizeof(T)));
        cuda::swiglu_backward(R * F, s.gate.data(), s.up.data(), dact.data(), s.dgate.data(), s.dup.data(), stream());
      }
      s.dn2 = buffer(RH);
      input_grad(s.dgate.data(), p.w("w_gate"), R, H, F, s.dn2.data(), false);
      input_grad(s.dup.data(), p.w("w_up"), R, H, F, s.dn2.data(), true);
    }
    s.dh = buffer(RH);
    {
      OpScope op(log_, "rmsnorm_backward_input", rmsnorm_work('I', R, H, sizeof(T)));
      cuda::rmsnorm_backward_input(R, H, s.h.data(), p.w("mlp_norm"), s.rstd2.data(), s.dn2.data(), s.dh.data(), stream());
    }
    add(s.dh.data(), s.dy.data(), s.dh.data(), 'I');
    DeviceBuffer<T> dctx = buffer(RH), scratch = buffer(size_t(sh.probs_size()));
    input_grad(s.dh.data(), p.w("wo"), R, H, H, dctx.data(), false);
    s.dq = buffer(RH);
    s.dk = buffer(RH);
    s.dv = buffer(RH);
    {
      OpScope op(log_, "attention_backward", attention_work('I', sh, sizeof(T)));
      cuda::attention_backward(blas_, sh, s.q.data(), s.k.data(), s.v.data(), s.probs.data(), dctx.data(), s.dq.data(), s.dk.data(),
                               s.dv.data(), scratch.data(), stream());
    }
    s.dn1 = buffer(RH);
    input_grad(s.dq.data(), p.w("wq"), R, H, H, s.dn1.data(), false);
    input_grad(s.dk.data(), p.w("wk"), R, H, H, s.dn1.data(), true);
    input_grad(s.dv.data(), p.w("wv"), R, H, H, s.dn1.data(), true);
    DeviceBuffer<T> dx = buffer(RH);
    {
      OpScope op(log_, "rmsnorm_backward_input", rmsnorm_work('I', R, H, sizeof(T)));
      cuda::rmsnorm_backward_input(R, H, s.x.data(), p.w("attn_norm"), s.rstd1.data(), s.dn1.data(), dx.data(), stream());
    }
    add(dx.data(), s.dh.data(), dx.data(), 'I');
    s.q = DeviceBuffer<T>();
    s.k = DeviceBuffer<T>();
    s.v = DeviceBuffer<T>();
    s.probs = DeviceBuffer<T>();
    if (!moe_) {
      s.gate = DeviceBuffer<T>();
      s.up = DeviceBuffer<T>();
    }
    return dx;
  }

  // StageModel::layer_backward_weight.
  void layer_backward_weight(const Saved& s, Layer& g) {
    const int R = rows(), H = spec_.hidden, F = spec_.ffn;
    if (moe_) {
      moe_->backward_weight(s.moe, s.n2.data(), g.moe_grads);
    } else {  // DenseMlp::backward_weight
      weight_grad(s.act.data(), s.dy.data(), R, F, H, g.g("w_down"));
      weight_grad(s.n2.data(), s.dgate.data(), R, H, F, g.g("w_gate"));
      weight_grad(s.n2.data(), s.dup.data(), R, H, F, g.g("w_up"));
    }
    {
      OpScope op(log_, "rmsnorm_backward_weight", rmsnorm_work('W', R, H, sizeof(T)));
      cuda::rmsnorm_backward_weight(R, H, s.h.data(), s.rstd2.data(), s.dn2.data(), g.g("mlp_norm"), stream());
    }
    weight_grad(s.ctx.data(), s.dh.data(), R, H, H, g.g("wo"));
    weight_grad(s.n1.data(), s.dq.data(), R, H, H, g.g("wq"));
    weight_grad(s.n1.data(), s.dk.data(), R, H, H, g.g("wk"));
    weight_grad(s.n1.data(), s.dv.data(), R, H, H, g.g("wv"));
    {
      OpScope op(log_, "rmsnorm_backward_weight", rmsnorm_work('W', R, H, sizeof(T)));
      cuda::rmsnorm_backward_weight(R, H, s.x.data(), s.rstd1.data(), s.dn1.data(), g.g("attn_norm"), stream());
    }
  }

  // The MoE layer's tensors, by MoeMlp::for_each_tensor's names ("router", "expert{e}.w_gate", ...).
  void point_at_moe_tensors(Layer& L) {
    L.moe.router = L.w("router");
    L.moe_grads.router = L.g("router");
    const auto& x = moe_->exchange();
    for (int e = x.first_expert(); e < x.first_expert() + x.local_experts(); ++e) {
      auto name = [e](const char* part) { return fmt::format("expert{}.{}", e, part); };
      L.moe.w_gate.push_back(L.w(name("w_gate")));
      L.moe.w_up.push_back(L.w(name("w_up")));
      L.moe.w_down.push_back(L.w(name("w_down")));
      L.moe_grads.w_gate.push_back(L.g(name("w_gate")));
      L.moe_grads.w_up.push_back(L.g(name("w_up")));
      L.moe_grads.w_down.push_back(L.g(name("w_down")));
    }
  }

  WorkloadSpec spec_;
  int first_, count_;
  bool first_stage_, last_stage_;
  std::shared_ptr<GpuStream> stream_;
  cuda::Blas blas_;
  std::map<int, DeviceBuffer<T>> inputs_, targets_;  // synthetic(): the first stage's inputs, the last's targets
  std::optional<Moe> moe_;
  std::vector<Layer> layers_;
  std::vector<std::string> names_;  // gradients() order
  DeviceBuffer<T> final_norm_, final_norm_grad_;
  std::map<int, Microbatch> saved_;
  std::map<int, T> losses_;
  OpLog* log_;  // nullptr when the device does not record kernels
};

template <class T>
class CudaDevice : public Device<T> {
 public:
  CudaDevice(int index, bool record_kernels, GpuShare share, cuda::GemmMath math) : index_(index), math_(math) {
    int count = cuda::device_count();
    if (count == 0) throw Error("--device cuda: " + cuda::no_device_reason());
    if (index < 0 || index >= count)
      throw Error(fmt::format("--device cuda: device {} does not exist ({} visible)", index, count));
    cuda::check(cudaSetDevice(index), "cudaSetDevice");
    // The pool keeps what is freed: returning it to the driver at every synchronisation would make each
    // action pay for fresh allocations.
    cudaMemPool_t pool = nullptr;
    cuda::check(cudaDeviceGetDefaultMemPool(&pool, index), "cudaDeviceGetDefaultMemPool");
    auto keep = std::numeric_limits<std::uint64_t>::max();
    cuda::check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "cudaMemPoolSetAttribute");
    if (share.count > 1) partition_ = SmPartition::create(index, share.slot, share.count);
    if (record_kernels) {
      try {
        trace_ = CuptiTrace::shared();
        ops_.set_owner(trace_->add_owner());
      } catch (const Error& e) {  // e.g. a profiler holds CUPTI: the run goes on without kernel lanes
        fmt::print(stderr, "pipesim: not recording GPU kernels: {}\n", e.what());
        trace_ = nullptr;
      }
    }
  }
  std::string name() const override {
    if (!partition_) return fmt::format("cuda:{}", index_);
    return fmt::format("cuda:{} ({} of its {} SMs)", index_, partition_->sm_count(), partition_->device_sm_count());
  }
  std::unique_ptr<StageCompute<T>> make_stage(const WorkloadSpec& spec, int first, int count, bool first_stage,
                                              bool last_stage, AllToAll<T> exchange) override {
    cuda::check(cudaSetDevice(index_), "cudaSetDevice");
    if (partition_) partition_->make_current();
    return std::make_unique<CudaStage<T>>(spec, first, count, first_stage, last_stage, std::move(exchange),
                                          partition_ ? partition_->make_stream() : make_device_stream(), math_,
                                          trace_ ? &ops_ : nullptr);
  }
  // The overlapped pairs' second thread: this device's GPU and SM share, its kernels recorded as this rank's.
  void adopt_thread() override {
    cuda::check(cudaSetDevice(index_), "cudaSetDevice");
    if (partition_) partition_->make_current();
    if (trace_) trace_->add_thread(ops_.owner());
  }
  void release_thread() override {
    if (trace_) trace_->remove_thread(ops_.owner());
  }
  Buffer<T> transfer_buffer(std::size_t count) override {
    cuda::check(cudaSetDevice(index_), "cudaSetDevice");
    if (partition_) partition_->make_current();
    return to_buffer(DeviceBuffer<T>(count), nullptr);
  }
  // CUPTI's records since the last call, moved onto the steady clock and made relative to `origin`.
  std::vector<KernelSpan> take_kernels(int rank, std::chrono::steady_clock::time_point origin) override {
    if (!trace_) return {};
    cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    auto shift = CuptiTrace::host_offset_ns() -
                 std::chrono::duration_cast<std::chrono::nanoseconds>(origin.time_since_epoch()).count();
    std::vector<KernelSpan> out;
    auto records = trace_->flush(ops_.owner());
    if (trace_->dropped() > dropped_) {  // CUPTI ran out of buffer space: some kernels are missing
      fmt::print(stderr, "pipesim: CUPTI dropped {} activity records; the kernel lanes miss some kernels\n",
                 trace_->dropped() - dropped_);
      dropped_ = trace_->dropped();
    }
    for (auto& a : records) {
      out.push_back({rank, a.stream, a.name, a.start_ns + shift, a.end_ns + shift, a.bytes, -1, {}});
      if (auto* work = ops_.find(a.op)) {
        out.back().op = static_cast<std::int64_t>(a.op);
        out.back().work = *work;
      }
    }
    ops_.clear();
    return out;
  }

 private:
  int index_;
  cuda::GemmMath math_;
  std::shared_ptr<SmPartition> partition_;  // when ranks share this GPU
  std::shared_ptr<CuptiTrace> trace_;  // shared with the process's other devices (ranks as threads)
  std::uint64_t dropped_ = 0;          // CUPTI's dropped records already reported
  CuptiOpLog ops_;
};

}  // namespace

template <class T>
std::unique_ptr<Device<T>> make_cuda_device(int index, bool record_kernels, GpuShare share, cuda::GemmMath math) {
  return std::make_unique<CudaDevice<T>>(index, record_kernels, share, math);
}

template std::unique_ptr<Device<double>> make_cuda_device<double>(int, bool, GpuShare, cuda::GemmMath);
template std::unique_ptr<Device<float>> make_cuda_device<float>(int, bool, GpuShare, cuda::GemmMath);

}  // namespace pipesim
