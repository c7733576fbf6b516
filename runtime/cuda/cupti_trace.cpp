// CUPTI activity recording (see cupti_trace.hpp).
#include "runtime/cuda/cupti_trace.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <cupti.h>
#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

constexpr std::size_t kBufferBytes = 8 << 20;
constexpr std::size_t kAlign = 8;

CuptiTrace* active = nullptr;  // the recorder CUPTI's callbacks deliver to (see cupti_trace.hpp)

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
  if (active) active->take(buffer, valid);
  std::free(buffer);
}

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
  if (active) throw Error("CUPTI: one activity recorder per process", Error::Kind::Internal);
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernel activity");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "enable memcpy activity");
  // External correlation records tie a CUDA call made while an operator was pushed to the operator; CUPTI
  // emits them beside the API records, so those are enabled too (and skipped in take()).
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION), "enable external correlation activity");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME), "enable runtime API activity");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER), "enable driver API activity");
  active = this;
}

CuptiTrace::~CuptiTrace() {
  cuptiActivityFlushAll(1);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMCPY);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_RUNTIME);
  cuptiActivityDisable(CUPTI_ACTIVITY_KIND_DRIVER);
  active = nullptr;
}

void CuptiTrace::take(const std::uint8_t* buffer, std::size_t valid) {
  std::lock_guard lock(mutex_);
  CUpti_Activity* record = nullptr;
  auto* data = const_cast<std::uint8_t*>(buffer);  // CUPTI's API takes a mutable pointer and only reads
  while (cuptiActivityGetNextRecord(data, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || record->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      records_.push_back({k->name ? k->name : "?", k->streamId, static_cast<std::int64_t>(k->start),
                          static_cast<std::int64_t>(k->end), 0, 0});
      correlation_of_.push_back(k->correlationId);
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
      records_.push_back({copy_name(m->copyKind), m->streamId, static_cast<std::int64_t>(m->start),
                          static_cast<std::int64_t>(m->end), static_cast<std::int64_t>(m->bytes), 0});
      correlation_of_.push_back(m->correlationId);
    } else if (record->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
      auto* x = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
      if (x->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0)
        correlations_.emplace_back(x->correlationId, x->externalId);
    }
  }
}

int CuptiTrace::add_owner() {
  std::lock_guard lock(mutex_);
  streams_.emplace_back();
  return static_cast<int>(streams_.size()) - 1;
}

std::vector<GpuActivity> CuptiTrace::flush(int owner) {
  check(cuptiActivityFlushAll(1), "cuptiActivityFlushAll");
  std::lock_guard lock(mutex_);
  std::size_t lost = 0;
  if (cuptiActivityGetNumDroppedRecords(nullptr, 0, &lost) == CUPTI_SUCCESS) dropped_ += lost;
  // The operator of each record through its launch's correlation id (a record may arrive in an earlier
  // buffer than its correlation, so the join waits for the flush).
  // A correlation is kept for a later flush only while its owner may still have kernels in flight: every
  // owner flushes after synchronizing its work, so its own unmatched ones (API calls that launched nothing)
  // go now.
  std::sort(correlations_.begin(), correlations_.end());
  std::vector<bool> used(correlations_.size(), false);
  for (std::size_t i = 0; i < records_.size(); ++i) {
    if (records_[i].op != 0) continue;
    auto it = std::lower_bound(correlations_.begin(), correlations_.end(), std::make_pair(correlation_of_[i], std::uint64_t{0}));
    if (it == correlations_.end() || it->first != correlation_of_[i]) continue;
    records_[i].op = it->second;
    used[static_cast<std::size_t>(it - correlations_.begin())] = true;
  }
  std::vector<std::pair<std::uint32_t, std::uint64_t>> pending;
  for (std::size_t i = 0; i < correlations_.size(); ++i)
    if (!used[i] && op_owner(correlations_[i].second) != owner) pending.push_back(correlations_[i]);
  correlations_ = std::move(pending);
  // Its operators' records first (they name its streams), then the untagged ones on those streams.
  auto& streams = streams_.at(static_cast<std::size_t>(owner));
  bool alone = streams_.size() == 1;
  for (auto& r : records_)
    if (r.op != 0 && op_owner(r.op) == owner) streams.insert(r.stream);
  std::vector<GpuActivity> out, kept;
  std::vector<std::uint32_t> kept_correlation;
  for (std::size_t i = 0; i < records_.size(); ++i) {
    auto& r = records_[i];
    bool mine = alone || (r.op != 0 ? op_owner(r.op) == owner : streams.count(r.stream) > 0);
    if (mine) {
      out.push_back(std::move(r));
    } else {
      kept.push_back(std::move(r));
      kept_correlation.push_back(correlation_of_[i]);
    }
  }
  records_ = std::move(kept);
  correlation_of_ = std::move(kept_correlation);
  std::sort(out.begin(), out.end(), [](const GpuActivity& a, const GpuActivity& b) { return a.start_ns < b.start_ns; });
  return out;
}

void CuptiTrace::push_op(std::uint64_t id) {
  check(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id),
        "cuptiActivityPushExternalCorrelationId");
}

void CuptiTrace::pop_op() {
  std::uint64_t last = 0;
  check(cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last),
        "cuptiActivityPopExternalCorrelationId");
}

std::int64_t CuptiTrace::host_offset_ns() {
  std::uint64_t cupti = 0;
  check(cuptiGetTimestamp(&cupti), "cuptiGetTimestamp");
  auto host = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
  return host.count() - static_cast<std::int64_t>(cupti);
}

}  // namespace pipesim
