// Time of one operator pass on one GPU at the rates of a hardware profile (docs/hardware-profiles.md §2):
// GEMMs by precision and smallest dimension, attention by direction, memory-bound operators at the
// profile's bandwidth (an operator takes the longer of its FLOP and byte times), plus the launch gap of
// each kernel it runs. The stage costs and the phase model both price operators here.
#pragma once

#include "models/accounting.hpp"
#include "topologies/hw_profile.hpp"

namespace pipesim {

struct OpTime {
  double compute_ns = 0;  // FLOP-bound or byte-bound time, whichever is longer
  double launch_ns = 0;   // kernels x the profile's launch gap
  bool memory_bound = false;
  double total() const { return compute_ns + launch_ns; }
};

OpTime op_time(const OpCost& op, PassKind pass, const HwProfile& hw, bool fp8);
inline double op_ns(const OpCost& op, PassKind pass, const HwProfile& hw, bool fp8) {
  return op_time(op, pass, hw, fp8).total();
}

}  // namespace pipesim
