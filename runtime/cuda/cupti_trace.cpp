// CUPTI activity recording (see cupti_trace.hpp).
#include "runtime/cuda/cupti_trace.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <cupti.h>
#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

constexpr std::size_t kBufferBytes = 8 << 20;
constexpr std::size_t kAlign = 8;

// The recorder CUPTI's callbacks deliver to (see cupti_trace.hpp), and the lock that keeps it alive while a
// delivery from CUPTI's own thread uses it.
CuptiTrace* active = nullptr;
std::mutex active_mutex;

void check(CUptiResult status, const char* what) {
  if (status == CUPTI_SUCCESS) return;
  const char* text = nullptr;
  cuptiGetResultString(status, &text);
  throw Error(fmt::format("CUPTI: {}: {} ({})", what, text ? text : "unknown", static_cast<int>(status)),
              Error::Kind::Internal);
}

void CUPTIAPI buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  *buffer = static_cast<std::uint8_t*>(std::aligned_alloc(kAlign, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext, std::uint32_t, std::uint8_t* buffer, std::size_t, std::size_t valid) {
  {
    std::lock_guard lock(active_mutex);
    if (active) active->take(buffer, valid);
  }
  std::free(buffer);
}

std::uint32_t this_thread() { return static_cast<std::uint32_t>(syscall(SYS_gettid)); }

const char* copy_name(std::uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    default: return "memcpy";
  }
}

}  // namespace

CuptiTrace::CuptiTrace() {
  {
    std::lock_guard lock(active_mutex);
    if (active) throw Error("CUPTI: one activity recorder per process", Error::Kind::Internal);
  }
  // API records name their thread by the system's id, which add_owner() reads with gettid.
  check(cuptiSetThreadIdType(CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM), "cuptiSetThreadIdType");
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  {
    std::lock_guard lock(active_mutex);
    active = this;
  }
  try {
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernel activity");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "enable memcpy activity");
    // External correlation records tie a CUDA call made while an operator was pushed to the operator, and API
    // records (runtime, driver, and the launches libraries make internally) tie it to the thread that made it;
    // CUPTI emits the former only beside the latter.
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION), "enable external correlation activity");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME), "enable runtime API activity");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER), "enable driver API activity");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_INTERNAL_LAUNCH_API), "enable internal launch activity");
  } catch (...) {
    stop();  // no destructor runs for a constructor that throws: nothing may be left pointing here
    throw;
  }
}

void CuptiTrace::stop() noexcept {
  for (auto kind : {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                    CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER,
                    CUPTI_ACTIVITY_KIND_INTERNAL_LAUNCH_API})
    cuptiActivityDisable(kind);
  cuptiActivityFlushAll(1);
  std::lock_guard lock(active_mutex);
  active = nullptr;
}

CuptiTrace::~CuptiTrace() { stop(); }

void CuptiTrace::take(const std::uint8_t* buffer, std::size_t valid) {
  std::lock_guard lock(mutex_);
  CUpti_Activity* record = nullptr;
  auto* data = const_cast<std::uint8_t*>(buffer);  // CUPTI's API takes a mutable pointer and only reads
  while (cuptiActivityGetNextRecord(data, valid, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      case CUPTI_ACTIVITY_KIND_KERNEL: {
        auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        pool_.add_activity({k->name ? k->name : "?", k->streamId, static_cast<std::int64_t>(k->start),
                            static_cast<std::int64_t>(k->end), 0, k->correlationId, 0});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        pool_.add_activity({copy_name(m->copyKind), m->streamId, static_cast<std::int64_t>(m->start),
                            static_cast<std::int64_t>(m->end), static_cast<std::int64_t>(m->bytes), m->correlationId, 0});
        break;
      }
      case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
        auto* x = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
        if (x->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) pool_.add_operator(x->correlationId, x->externalId);
        break;
      }
      case CUPTI_ACTIVITY_KIND_RUNTIME:
      case CUPTI_ACTIVITY_KIND_DRIVER:
      case CUPTI_ACTIVITY_KIND_INTERNAL_LAUNCH_API: {
        auto* api = reinterpret_cast<const CUpti_ActivityAPI*>(record);
        pool_.add_call(api->correlationId, api->threadId);
        break;
      }
      default: break;
    }
  }
}

std::shared_ptr<CuptiTrace> CuptiTrace::shared() {
  static std::mutex mutex;
  static std::weak_ptr<CuptiTrace> current;
  std::lock_guard lock(mutex);
  auto trace = current.lock();
  if (!trace) current = trace = std::make_shared<CuptiTrace>();
  return trace;
}

int CuptiTrace::add_owner() {
  std::lock_guard lock(mutex_);
  return pool_.add_owner(this_thread());
}

void CuptiTrace::add_thread(int owner) {
  std::lock_guard lock(mutex_);
  pool_.add_thread(owner, this_thread());
}

void CuptiTrace::remove_thread(int owner) {
  std::lock_guard lock(mutex_);
  pool_.remove_thread(owner, this_thread());
}

std::vector<GpuActivity> CuptiTrace::flush(int owner) {
  std::lock_guard serial(flushing_);
  std::size_t lost = 0;
  if (cuptiActivityGetNumDroppedRecords(nullptr, 0, &lost) == CUPTI_SUCCESS) dropped_ += lost;
  check(cuptiActivityFlushAll(1), "cuptiActivityFlushAll");
  std::lock_guard lock(mutex_);
  return pool_.take(owner);
}

void CuptiTrace::push_op(std::uint64_t id) {
  check(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id),
        "cuptiActivityPushExternalCorrelationId");
}

void CuptiTrace::pop_op() noexcept {
  std::uint64_t last = 0;
  auto status = cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
  if (status != CUPTI_SUCCESS) std::fprintf(stderr, "pipesim: CUPTI: could not pop an operator (%d)\n", int(status));
}

std::int64_t CuptiTrace::host_offset_ns() {
  std::uint64_t cupti = 0;
  check(cuptiGetTimestamp(&cupti), "cuptiGetTimestamp");
  auto host = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
  return host.count() - static_cast<std::int64_t>(cupti);
}

}  // namespace pipesim
