// A hardware profile calibrated from an imported profiler trace, kernel by kernel: the model says what
// each annotated phase computes (FLOPs and GEMM shapes, attention FLOPs, bytes, all-to-all bytes), the
// trace says how long that phase's GEMM, attention, memory-bound and communication kernels ran. Only
// kernel times enter the fit; no step or phase wall time does (docs/hardware-profiles.md §3).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sim/phases.hpp"
#include "traces/trace_import.hpp"

namespace pipesim {

// One annotated phase, mean per instance over instances and ranks. Kernel times are on an idle GPU: a
// kernel that ran while communication held SMs counts its time divided by the measured slowdown.
struct PhaseMeasure {
  std::string name;
  int instances = 0;
  double span_ns = 0;        // first kernel start to last kernel end, as it ran
  double gemm_ns = 0, attention_ns = 0, memory_ns = 0, comm_ns = 0;
  double compute_as_run_ns = 0;  // the compute kernels' time as they ran (before removing the slowdown)
  // The phase on an idle GPU: its span less the slowdown its compute kernels suffered (communication phases:
  // the span as it ran).
  double idle_ns() const {
    return gemm_ns + attention_ns + memory_ns > 0 ? span_ns - compute_as_run_ns + gemm_ns + attention_ns + memory_ns
                                                  : span_ns;
  }
};

// The compute slowdown while communication kernels run: per kernel name that ran both under
// communication and alone (at least 20 us), the ratio of the median durations; the median of those.
// 0 when no kernel name ran both ways.
double measured_slowdown(const ImportedRun& run);
// Median idle time between consecutive kernels of the compute streams, in us.
double measured_launch_gap_us(const ImportedRun& run);
std::vector<PhaseMeasure> measure_phases(const ImportedRun& run, double slowdown);

struct FitRow {
  std::string figure;   // "gemm fp8", "memory", "attention forward", "dispatch", ...
  std::string phase;    // the phase the measurement comes from
  double measured_ns = 0, fitted_ns = 0;
  double residual() const { return measured_ns > 0 ? (fitted_ns - measured_ns) / measured_ns : 0; }
};

struct ProfileFit {
  HwProfile profile;
  std::vector<FitRow> rows;
};

// One phase as measured beside what the model counts in it.
struct PhaseSample {
  PhaseMeasure measured;
  PhaseCost model;
};
// The compute figures (docs/hardware-profiles.md §3 steps 3-5) into fit.profile, with a residual row per phase
// and figure: GEMM tables of `precision` per pass kind (a phase named "...(F)" is forward, "(B)" dgrad,
// anything else wgrad), attention rates, memory bandwidth and fixed time per kernel (bounded by
// `peak_GBps` when > 0). A figure no phase measures keeps the profile's value.
void fit_compute_rates(ProfileFit& fit, const std::vector<PhaseSample>& samples, std::string_view precision,
                       double peak_GBps, const std::string& source);

// `model_phases`: layer_phases() of the traced layer under the traced plan (any profile: only its counts
// are read). `base` gives what the trace cannot (the GEMM table of the other precision). `source`: the
// trace's name and hash, written into every fitted figure. `peak_GBps`: the HBM's datasheet bandwidth, a
// bound on the fitted memory bandwidth (0: none).
ProfileFit fit_profile(const ImportedRun& run, const std::vector<PhaseCost>& model_phases, const HwProfile& base,
                       bool fp8, double peak_GBps, const std::string& source);

// A prediction of the overlapped pair held against a trace of it: per phase, the predicted mean duration in
// the pair and the measured mean GPU span (NaN where the trace lacks the phase); the pair's makespan against
// the trace's GPU span (0 without a trace).
struct PhaseCheck {
  std::string name;
  double predicted_ns = 0, measured_ns = 0;
};
struct PairCheck {
  PairPrediction pair;
  std::vector<PhaseCheck> phases;  // in the order of `phases` given
  double measured_pair_ns = 0;
};
PairCheck check_pair(const std::vector<PhaseCost>& phases, int layers, double slowdown, const ImportedRun* measured);

}  // namespace pipesim
