// The CPU device: each stage is a StageModel running kernels/cpu (see device.hpp).
#include "runtime/device.hpp"
#include "runtime/stage_model.hpp"

namespace pipesim {
namespace {

template <class T>
class CpuStage : public StageCompute<T> {
 public:
  CpuStage(const WorkloadSpec& spec, int first, int count, bool first_stage, bool last_stage, AllToAll<T> exchange)
      : model_(spec, first, count, first_stage, last_stage, std::move(exchange)) {}
  std::vector<T> forward(int mb, const std::vector<T>& input) override { return model_.forward(mb, input); }
  std::vector<T> backward_input(int mb, const std::vector<T>& grad) override { return model_.backward_input(mb, grad); }
  void backward_weight(int mb) override { model_.backward_weight(mb); }
  T loss(int mb) const override { return model_.loss(mb); }
  std::vector<std::pair<std::string, std::vector<T>>> gradients() const override { return model_.gradients(); }
  void zero_gradients() override { model_.zero_gradients(); }

 private:
  StageModel<T> model_;
};

template <class T>
class CpuDevice : public Device<T> {
 public:
  std::string name() const override { return "cpu"; }
  std::unique_ptr<StageCompute<T>> make_stage(const WorkloadSpec& spec, int first, int count, bool first_stage,
                                              bool last_stage, AllToAll<T> exchange) override {
    return std::make_unique<CpuStage<T>>(spec, first, count, first_stage, last_stage, std::move(exchange));
  }
};

}  // namespace

template <class T>
std::unique_ptr<Device<T>> make_cpu_device() {
  return std::make_unique<CpuDevice<T>>();
}

template std::unique_ptr<Device<double>> make_cpu_device<double>();
template std::unique_ptr<Device<float>> make_cpu_device<float>();

}  // namespace pipesim
