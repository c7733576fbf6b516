// The single-process reference step and the comparison with it (see reference.hpp).
#include "runtime/reference.hpp"

#include <cmath>
#include <cstring>

#include "common/numeric.hpp"

namespace pipesim {

template <class T>
StepValues reference_step(WorkloadSpec spec, int microbatches, Device<T>& device) {
  int all = microbatches * spec.ep;  // every replica's micro-batches, all experts here
  spec.ep = 1;
  spec.ep_rank = 0;
  auto model = device.make_stage(spec, 0, spec.layers, true, true, {});
  StepValues out;
  for (int mb = 0; mb < all; ++mb) {
    model->forward(mb, Buffer<T>{});
    out.losses[mb] = static_cast<double>(model->loss(mb));
    model->backward_input(mb, Buffer<T>{});
    model->backward_weight(mb);
  }
  for (auto& [name, values] : model->gradients()) out.gradients[name].assign(values.begin(), values.end());
  return out;
}

template <class T>
StepValues reference_step(WorkloadSpec spec, int microbatches) {
  auto cpu = make_cpu_device<T>();
  return reference_step<T>(spec, microbatches, *cpu);
}

CheckResult compare_with_reference(const StepValues& got, const StepValues& want, double tolerance) {
  CheckResult r;
  r.losses = static_cast<int>(want.losses.size());
  r.gradients = want.gradients.size();
  r.tolerance = tolerance;
  for (auto& [mb, loss] : want.losses) {
    auto it = got.losses.find(mb);
    if (it != got.losses.end() && std::memcmp(&it->second, &loss, sizeof(double)) == 0) ++r.exact_losses;
  }
  for (auto& [name, values] : want.gradients) {
    auto it = got.gradients.find(name);
    if (it == got.gradients.end() || it->second.size() != values.size()) {
      r.worst_relative_error = INFINITY;
      continue;
    }
    r.worst_relative_error = std::max(r.worst_relative_error, relative_error(it->second, values));
    ++r.compared_gradients;
  }
  r.ok = r.exact_losses == r.losses && r.compared_gradients == r.gradients && r.worst_relative_error <= tolerance;
  return r;
}

template StepValues reference_step<double>(WorkloadSpec, int, Device<double>&);
template StepValues reference_step<float>(WorkloadSpec, int, Device<float>&);
template StepValues reference_step<double>(WorkloadSpec, int);
template StepValues reference_step<float>(WorkloadSpec, int);

}  // namespace pipesim
