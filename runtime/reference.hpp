// The oracle every schedule is checked against (docs/validation.md §5): the whole model as one stage in one
// process, micro-batch after micro-batch, with every replica's micro-batches and all experts here; and the
// comparison of a pipelined step with it: losses bit for bit, weight gradients to a relative tolerance.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "runtime/device.hpp"
#include "runtime/workload.hpp"

namespace pipesim {

// A training step's outcome: per-micro-batch losses by data id (replica · microbatches + micro-batch;
// float losses widen to double exactly) and the weight gradients by name ("layer3.wq").
struct StepValues {
  std::map<int, double> losses;
  std::map<std::string, std::vector<double>> gradients;
};

struct CheckResult {
  int exact_losses = 0;               // micro-batch losses bit-identical to the reference's
  int losses = 0;                     // the reference's micro-batches
  std::size_t compared_gradients = 0; // present, with the reference's size
  std::size_t gradients = 0;          // the reference's weight tensors
  double worst_relative_error = 0;    // over the compared gradients (relative_error, common/numeric.hpp);
                                      // infinity when one is missing or misshapen
  double tolerance = 0;
  bool ok = false;                    // every loss exact, every gradient compared and within tolerance
};

// 1e-12 in fp64 (DualPipe's own check asks 1e-13 of a smaller model), 1e-5 in fp32.
template <class T>
constexpr double check_tolerance() {
  return sizeof(T) == sizeof(double) ? 1e-12 : 1e-5;
}

// `microbatches` per replica; spec.ep replicas. The whole model is one stage made by `device` (the CPU's by
// default), so a GPU run is checked against the same kernels on the same GPU. Throws Error on an invalid spec.
template <class T>
StepValues reference_step(WorkloadSpec spec, int microbatches, Device<T>& device);
template <class T>
StepValues reference_step(WorkloadSpec spec, int microbatches);

CheckResult compare_with_reference(const StepValues& got, const StepValues& want, double tolerance);

}  // namespace pipesim
