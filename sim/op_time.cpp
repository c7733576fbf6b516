// Operator timing at a hardware profile's rates (see op_time.hpp).
#include "sim/op_time.hpp"

#include <algorithm>

namespace pipesim {

OpTime op_time(const OpCost& op, PassKind pass, const HwProfile& hw, bool fp8) {
  OpTime t;
  double flops = op.flops[pass], bytes = op.bytes[pass];
  t.launch_ns = op.kernels[pass] * hw.launch_gap_us.value * 1e3;
  if (flops == 0 && bytes == 0) return t;
  double tflops = 0;
  if (op.name == "attention.core")
    tflops = pass == PassKind::F ? hw.attention_forward_tflops.value : hw.attention_backward_tflops.value;
  else if (op.k > 0)
    tflops = gemm_tflops(hw, fp8 ? "fp8" : "bf16", std::min({op.m, op.n, op.k}),
                         pass == PassKind::F ? GemmKind::Forward : pass == PassKind::I ? GemmKind::Dgrad : GemmKind::Wgrad);
  else
    tflops = gemm_tflops(hw, "bf16", 1e300);  // FLOPs outside a GEMM (a recomputed forward): the large-GEMM rate
  double compute = flops > 0 ? flops / (tflops * 1e3) : 0;  // 1 TFLOP/s = 1e3 FLOP per ns
  double memory = bytes / hw.memory_GBps.value;             // 1 GB/s = 1 byte/ns
  if (compute == 0) memory += op.kernels[pass] * hw.memory_kernel_us.value * 1e3;  // memory-bound kernels' fixed time
  t.memory_bound = memory > compute;
  t.compute_ns = std::max(compute, memory);
  return t;
}

}  // namespace pipesim
