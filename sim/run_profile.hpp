// A hardware profile from a measured run's own kernels, and the run priced back at a profile
// (docs/gpu-runtime.md §10). The runtime tags every kernel with the operator that launched it and that
// operator's work (runtime/op_log.hpp), so each (stage, pass) of the run is a phase whose kernel time per
// class is measured and whose work is counted: its compute figures are fitted exactly as an imported
// trace's are (profile_fit.hpp), from kernel times only. Priced back, each action lasts the sum of its
// operators at the profile's rates (sim/op_time.hpp, the simulator's own pricing), so `simulate
// --calibration` then predicts the step from kernel rates, never from an action's or a step's wall time.
#pragma once

#include <string>
#include <vector>

#include "sim/profile_fit.hpp"
#include "traces/timeline_file.hpp"

namespace pipesim {

// The GEMM table the run's GEMMs measure: its workload's "gemm_math" when tensor-core (tf32, bf16, fp8), else its
// "precision" (fp32, fp64), else fp32.
std::string run_precision(const RunRecord& run);

// Fits GEMM tables (one per pass kind), attention rates, memory bandwidth and fixed time per kernel, and
// the launch gap (the median idle between consecutive tagged kernels of one stream inside one action) over
// the steps after the first; other figures keep `base`'s. Rows: per phase "stage S (F)", "(B)" (the I
// pass, as the trace fit names it) and "(W)". Throws Error naming the file when no kernel carries its
// operator (`pipesim run` records them on the CPU, and on GPUs under mpirun).
ProfileFit fit_run_profile(const RunRecord& run, const HwProfile& base, double peak_GBps, const std::string& source);
// Over several runs (sizes), phases named "run N stage S (F)": runs whose GEMMs have different smallest
// dimensions give the GEMM tables their knee, which one size cannot. The runs must share their precision.
struct SourcedRun {
  const RunRecord* run;
  std::string source;  // its file and hash, for the figures' sources and messages
};
ProfileFit fit_run_profile(const std::vector<SourcedRun>& runs, const HwProfile& base, double peak_GBps);

// The time of one operator that launched `kernels` kernels, at `profile`'s rates (op_time()).
double op_price_ns(const OpWork& work, int kernels, const HwProfile& profile, const std::string& precision);

// Per stage and action kind, over the steps after the first: the measured median duration, the median of
// its operators' prices, and the share of the measured time its operators' kernels account for, in all and
// by kind (GEMM, attention, memory-bound, communication; medians each, so they need not add up): where an
// action's time goes.
struct PriceCheck {
  int stage = 0;
  Op op = Op::F;
  double measured_ns = 0, priced_ns = 0, kernel_share = 0;
  double gemm_share = 0, attention_share = 0, memory_share = 0, comm_share = 0;
  double error() const { return measured_ns > 0 ? (priced_ns - measured_ns) / measured_ns : 0; }
};

// `run` with every compute action's duration replaced by the sum of its operators' prices (its start kept;
// an action that ran no tagged operator lasts 0), and the measured-against-priced checks. An expert
// all-to-all is priced at the run's own all-to-all microbenchmark rate. Throws Error when the profile lacks
// the run's GEMM table (no silent fall back to bf16's), a step recorded no kernels, or no kernel is tagged.
struct PricedRun {
  RunRecord run;
  std::vector<PriceCheck> checks;
};
PricedRun price_run(const RunRecord& run, const HwProfile& profile);

}  // namespace pipesim
