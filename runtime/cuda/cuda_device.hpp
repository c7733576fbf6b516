// The CUDA device: each stage runs the workload's layers (runtime/stage_model.hpp, the same math) on one GPU,
// GEMMs through cuBLAS and the rest through kernels/cuda, on the stage's own compute stream, with every
// activation, saved tensor, weight and gradient in GPU memory. Initial weights are the CPU stage's (drawn
// from the same keyed streams), so a CUDA run and the CPU reference start from the same model.
// MoE layers run on the GPU too (runtime/device_moe.hpp): only the router's choices, the gates' gradients
// and the expert all-to-all's buffers cross to the host, the all-to-all being the host exchange.
#pragma once

#include <memory>

#include "kernels/cuda/gemm_math.hpp"
#include "runtime/device.hpp"

namespace pipesim {

// Which share of a GPU's SMs a rank gets when `count` ranks share it (runtime/cuda/sm_partition.hpp);
// count 1 is the whole GPU.
struct GpuShare {
  int slot = 0, count = 1;
};

// Stages on CUDA device `index` (cudaSetDevice), each with a stream of its own, on `share` of the SMs.
// With `record_kernels`, CUPTI records the kernels and copies of this device's stages for take_kernels(),
// each kernel tagged with the operator that launched it (devices of one process share CUPTI's one recorder
// and each takes what its thread launched); when CUPTI refuses (a profiler attached), the device says so on
// standard error and records nothing. Throws Error naming the reason when no device is
// usable or the SMs cannot be shared out.
// `math`: how FP32 GEMMs compute (kernels/cuda/gemm_math.hpp); FP64 ones are exact.
template <class T>
std::unique_ptr<Device<T>> make_cuda_device(int index, bool record_kernels = false, GpuShare share = {},
                                            cuda::GemmMath math = cuda::GemmMath::Exact);

}  // namespace pipesim
