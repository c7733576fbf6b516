// Green contexts through the driver API's entry points (see sm_partition.hpp).
#include "runtime/cuda/sm_partition.hpp"

#include <cuda.h>

#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cuda/check.hpp"

namespace pipesim {

struct SmPartition::Driver {
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*get_resource)(CUdevice, CUdevResource*, CUdevResourceType) = nullptr;
  CUresult (*split)(CUdevResource*, unsigned*, const CUdevResource*, CUdevResource*, unsigned, unsigned) = nullptr;
  CUresult (*describe)(CUdevResourceDesc*, CUdevResource*, unsigned) = nullptr;
  CUresult (*create)(CUgreenCtx*, CUdevResourceDesc, CUdevice, unsigned) = nullptr;
  CUresult (*destroy)(CUgreenCtx) = nullptr;
  CUresult (*stream_create)(CUstream*, CUgreenCtx, unsigned, int) = nullptr;
  CUresult (*to_context)(CUcontext*, CUgreenCtx) = nullptr;
  CUresult (*set_current)(CUcontext) = nullptr;

  static std::shared_ptr<const Driver> load() {
    auto d = std::make_shared<Driver>();
    auto find = [](const char* name, auto& fn) {
      void* p = nullptr;
      cudaDriverEntryPointQueryResult found{};
      auto status = cudaGetDriverEntryPointByVersion(name, &p, CUDA_VERSION, cudaEnableDefault, &found);
      if (status != cudaSuccess || found != cudaDriverEntryPointSuccess || !p)
        throw Error(fmt::format("the CUDA driver has no {} (green contexts need a driver for CUDA 12.4 or later)", name));
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    find("cuDeviceGet", d->device_get);
    find("cuDeviceGetDevResource", d->get_resource);
    find("cuDevSmResourceSplitByCount", d->split);
    find("cuDevResourceGenerateDesc", d->describe);
    find("cuGreenCtxCreate", d->create);
    find("cuGreenCtxDestroy", d->destroy);
    find("cuGreenCtxStreamCreate", d->stream_create);
    find("cuCtxFromGreenCtx", d->to_context);
    find("cuCtxSetCurrent", d->set_current);
    return d;
  }
};

namespace {

void check_driver(CUresult result, const char* what) {
  if (result != CUDA_SUCCESS) throw Error(fmt::format("CUDA driver: {} failed (CUresult {})", what, static_cast<int>(result)));
}

}  // namespace

GpuStream::GpuStream(cudaStream_t stream, std::shared_ptr<const SmPartition> partition)
    : stream_(stream), partition_(std::move(partition)) {}
GpuStream::~GpuStream() { cudaStreamDestroy(stream_); }

std::shared_ptr<GpuStream> make_device_stream() {
  cudaStream_t stream = nullptr;
  cuda::check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  return std::make_shared<GpuStream>(stream, nullptr);
}

std::shared_ptr<SmPartition> SmPartition::create(int device, int slot, int count) {
  if (count < 1 || slot < 0 || slot >= count)
    throw Error(fmt::format("SM partition: share {} of {} does not exist", slot, count), Error::Kind::Internal);
  std::shared_ptr<SmPartition> p(new SmPartition());
  p->driver_ = Driver::load();
  auto& d = *p->driver_;
  cuda::check(cudaSetDevice(device), "cudaSetDevice");
  cuda::check(cudaFree(nullptr), "initialising the device's primary context");
  CUdevice dev{};
  check_driver(d.device_get(&dev, device), "cuDeviceGet");
  CUdevResource all{};
  check_driver(d.get_resource(dev, &all, CU_DEV_RESOURCE_TYPE_SM), "cuDeviceGetDevResource");
  unsigned total = all.sm.smCount, align = all.sm.smCoscheduledAlignment ? all.sm.smCoscheduledAlignment : 1;
  unsigned share = total / static_cast<unsigned>(count) / align * align;
  if (share < all.sm.minSmPartitionSize || share == 0)
    throw Error(fmt::format("cannot give {} ranks a share each of the GPU's {} SMs (a share needs at least {}, in "
                            "multiples of {})",
                            count, total, all.sm.minSmPartitionSize, align));
  std::vector<CUdevResource> groups(static_cast<std::size_t>(count));
  unsigned made = static_cast<unsigned>(count);
  CUdevResource rest{};
  check_driver(d.split(groups.data(), &made, &all, &rest, 0, share), "cuDevSmResourceSplitByCount");
  if (made < static_cast<unsigned>(count))
    throw Error(fmt::format("the driver split the GPU's {} SMs into {} shares of {}, not {}", total, made, share, count));
  CUdevResourceDesc desc{};
  check_driver(d.describe(&desc, &groups[static_cast<std::size_t>(slot)], 1), "cuDevResourceGenerateDesc");
  CUgreenCtx context{};
  check_driver(d.create(&context, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM), "cuGreenCtxCreate");
  p->context_ = context;
  p->make_current();
  p->sm_count_ = static_cast<int>(groups[static_cast<std::size_t>(slot)].sm.smCount);
  p->device_sm_count_ = static_cast<int>(total);
  return p;
}

SmPartition::~SmPartition() {
  if (context_) driver_->destroy(static_cast<CUgreenCtx>(context_));
}

void SmPartition::make_current() const {
  CUcontext context{};
  check_driver(driver_->to_context(&context, static_cast<CUgreenCtx>(context_)), "cuCtxFromGreenCtx");
  check_driver(driver_->set_current(context), "cuCtxSetCurrent");
}

std::shared_ptr<GpuStream> SmPartition::make_stream() const {
  CUstream stream = nullptr;
  check_driver(driver_->stream_create(&stream, static_cast<CUgreenCtx>(context_), CU_STREAM_NON_BLOCKING, 0),
               "cuGreenCtxStreamCreate");
  return std::make_shared<GpuStream>(stream, shared_from_this());
}

}  // namespace pipesim
