// The phase view of a plan (`simulate --phases`, `calibrate --trace`): one MoE layer's phases as DeepSeek
// annotates them, priced with the cluster's hardware profile, the overlapped pair played on two streams,
// and, given a trace, the measured phases beside the predicted ones with their errors.
#pragma once

#include <string>
#include <vector>

#include "cli/plan_options.hpp"
#include "sim/phases.hpp"
#include "topologies/cluster.hpp"
#include "traces/trace_import.hpp"

namespace pipesim::cli {

// The cluster of the options with --hw-profile applied.
ClusterSpec cluster_of(const PlanOptions& options);

// The phases of the model's first MoE layer under the plan's shape, at `cluster`'s profile.
std::vector<PhaseCost> model_phases(const PlanOptions& options, const ClusterSpec& cluster);

// Imports a trace (or several ranks') for the phase view.
ImportedRun import_for_phases(const std::vector<std::string>& files);

// The table: predicted per phase (and the pair of `layers` layers); with `measured`, its phases and the
// errors. `json`: JSON instead of text.
std::string phase_table(const std::vector<PhaseCost>& phases, const ClusterSpec& cluster, int layers,
                        const ImportedRun* measured, bool json);

// Achieved rates per phase of a trace against the model's counts: GEMM and attention TFLOP/s, memory-bound
// GB/s, all-to-all GB/s per GPU (kernel times as they ran).
std::string achieved_rates(const std::vector<PhaseCost>& phases, const ImportedRun& measured, bool json);

}  // namespace pipesim::cli
