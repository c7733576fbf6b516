// CUDA status checks and device discovery (see check.hpp).
#include "kernels/cuda/check.hpp"

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim::cuda {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw Error(fmt::format("CUDA: {}: {} ({})", what, cudaGetErrorString(status), static_cast<int>(status)),
                Error::Kind::Internal);
}

int device_count() {
  int count = 0;  // cudaGetDeviceCount leaves it unwritten when it fails (no driver)
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls report their own
    return 0;
  }
  return count;
}

bool is_device_pointer(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice;
}

std::string no_device_reason() {
  int count = 0;
  auto status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("no usable CUDA device: {}", cudaGetErrorString(status));
  }
  return count == 0 ? "no CUDA device visible (CUDA_VISIBLE_DEVICES?)" : "";
}

}  // namespace pipesim::cuda
