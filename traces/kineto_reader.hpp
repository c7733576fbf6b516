// PyTorch profiler (Kineto) traces read as a stream of events: the Chrome-trace JSON that torch.profiler
// writes (*.pt.trace.json, plain or gzip), never held as a DOM. Only what import needs is kept: GPU
// kernels, memcpy/memset, CUDA runtime calls, user annotations and CPU ops, with exact integer-ns times.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipesim {

// From the event's "cat": kernel, gpu_memcpy, gpu_memset, cuda_runtime or cuda_driver, user_annotation,
// cpu_op. Everything else (gpu_user_annotation, flows, metadata, instants, python_function...) is skipped.
enum class KinetoKind : std::uint8_t { Kernel, Memcpy, Memset, Runtime, Annotation, CpuOp };

struct KinetoEvent {
  KinetoKind kind = KinetoKind::Kernel;
  std::uint32_t name = 0;        // index into KinetoTrace::names (equal names share one index)
  std::uint32_t thread = 0;      // index into names of the raw "pid/tid" text, e.g. "1166/1166" or "0/7"
  std::int64_t ts_ns = 0;        // start in ns, parsed exactly from the decimal microseconds (+ base_time_ns)
  std::int64_t dur_ns = 0;       // >= 0
  std::int64_t correlation = -1; // args.correlation (GPU activities and the runtime calls that launched them)
  std::int64_t external_id = -1; // args["External id"] (older Kineto: "external id")
  int stream = -1;               // args.stream (GPU activities), else -1
  int device = -1;               // args.device (GPU activities), else -1
  std::uint32_t input_dims = 0;  // index into names of args["Input Dims"] as raw JSON text; 0: none
  std::uint32_t input_types = 0; // the same for args["Input type"]
};

struct KinetoTrace {
  std::string source;                   // the file name, for messages
  std::optional<int> rank, world_size;  // distributedInfo.rank / world_size
  std::string device_name;              // deviceProperties[0].name, "" if absent
  int device_sms = 0;                   // deviceProperties[0].numSms, 0 if absent
  std::int64_t base_time_ns = 0;        // baseTimeNanoseconds if present (already added to every ts), else 0
  std::vector<std::string> names{""};   // interned; names[0] is ""
  std::vector<KinetoEvent> events;      // complete ("ph":"X") events of the kinds above, in file order
  std::int64_t bytes_read = 0;          // uncompressed text size
  const std::string& name_of(std::uint32_t i) const { return names[i]; }
};

// Parses the text of a trace: an object with "traceEvents" (Kineto) or a bare array of events (plain
// Chrome JSON). The whole text is validated as JSON (strings, escapes, UTF-8, numbers, nesting, trailing
// text), including events that are skipped. Throws Error naming `source` and the byte offset (malformed or
// truncated JSON) or the JSON path (an event of the wrong shape); a document without a traceEvents array,
// or without events of the kinds above, is refused.
KinetoTrace parse_kineto(std::string_view text, const std::string& source);
// Reads a file, gzip-compressed (detected by the magic bytes 1f 8b, not the extension) or plain, in
// chunks into one string (the text is held once, never a DOM), then parses it.
KinetoTrace read_kineto(const std::string& path);

}  // namespace pipesim
