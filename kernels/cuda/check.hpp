// Error checks for the CUDA runtime, cuBLAS and NCCL: every call's status becomes an Error naming the call
// and the library's own message, so a failing GPU rank reports what failed instead of crashing later. And
// one question every GPU test and `--device` asks first: is there a usable device here, and if not, why.
#pragma once

#include <string>

#include <cuda_runtime_api.h>

namespace pipesim::cuda {

// Throws Error (Internal: exit 1) "CUDA: <what>: <cudaGetErrorString>" unless status is cudaSuccess.
void check(cudaError_t status, const char* what);

// The number of CUDA devices this process can use; 0 when there is no driver or no device (never throws).
int device_count();
// Whether `p` points into GPU memory (cudaMalloc); false for host memory and on any CUDA error.
bool is_device_pointer(const void* p);
// Why device_count() is 0 ("no NVIDIA driver: CUDA driver version is insufficient ..."), or "" when it is not.
std::string no_device_reason();

}  // namespace pipesim::cuda
