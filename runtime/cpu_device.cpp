// The CPU device: each stage is a StageModel running kernels/cpu (see device.hpp); every operator it runs is
// timed on the host and handed to the run as a kernel with its work (op_log.hpp).
#include "runtime/device.hpp"
#include "runtime/op_log.hpp"
#include "runtime/stage_model.hpp"

namespace pipesim {
namespace {

template <class T>
class CpuStage : public StageCompute<T> {
 public:
  CpuStage(const WorkloadSpec& spec, int first, int count, bool first_stage, bool last_stage, AllToAll<T> exchange,
           OpLog* log)
      : model_(spec, first, count, first_stage, last_stage, std::move(exchange)) {
    model_.set_op_log(log);
  }
  Buffer<T> forward(int mb, const Buffer<T>& input) override { return Buffer<T>(model_.forward(mb, input.host())); }
  Buffer<T> backward_input(int mb, const Buffer<T>& grad) override {
    return Buffer<T>(model_.backward_input(mb, grad.host()));
  }
  void backward_weight(int mb) override { model_.backward_weight(mb); }
  T loss(int mb) const override { return model_.loss(mb); }
  std::vector<std::pair<std::string, std::vector<T>>> gradients() const override { return model_.gradients(); }
  void zero_gradients() override { model_.zero_gradients(); }
  Buffer<T> allocate(std::size_t count) override { return Buffer<T>(std::vector<T>(count)); }

 private:
  StageModel<T> model_;
};

template <class T>
class CpuDevice : public Device<T> {
 public:
  explicit CpuDevice(bool record_ops) : record_(record_ops) {}
  std::string name() const override { return "cpu"; }
  std::unique_ptr<StageCompute<T>> make_stage(const WorkloadSpec& spec, int first, int count, bool first_stage,
                                              bool last_stage, AllToAll<T> exchange) override {
    return std::make_unique<CpuStage<T>>(spec, first, count, first_stage, last_stage, std::move(exchange),
                                         record_ ? &log_ : nullptr);
  }
  // A rank's stages run on its one thread, so one log serves them all.
  std::vector<KernelSpan> take_kernels(int rank, std::chrono::steady_clock::time_point origin) override {
    return log_.take(rank, origin);
  }

 private:
  bool record_;
  HostOpLog log_;
};

}  // namespace

template <class T>
std::unique_ptr<Device<T>> make_cpu_device(bool record_ops) {
  return std::make_unique<CpuDevice<T>>(record_ops);
}

template std::unique_ptr<Device<double>> make_cpu_device<double>(bool);
template std::unique_ptr<Device<float>> make_cpu_device<float>(bool);

}  // namespace pipesim
