// Chrome trace writer (see chrome_trace.hpp). Written by hand with fmt: the format is flat, and this keeps
// a million-event trace fast and its bytes stable.
#include "traces/chrome_trace.hpp"

#include <iterator>
#include <algorithm>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "schedules/action_format.hpp"

namespace pipesim {
namespace {

constexpr std::int64_t kGpuLane = 1000;  // GPU stream lanes' thread ids: 1000 + CUPTI's stream id
// A kernel lane's thread id: 1000 + the GPU stream, 999 for a CPU stage's operators.
std::int64_t lane_of_stream(std::uint32_t stream) { return stream == kHostStream ? kGpuLane - 1 : kGpuLane + stream; }

// Nanoseconds as the trace's microseconds with three decimals, written in place (no temporary string).
struct Us {
  std::int64_t ns;
};

// Events appended straight into one buffer with compiled formats, separated by ",\n": no string per event
// and no format string parsed at run time.
struct Writer {
  fmt::memory_buffer& out;
  bool first = true;
  template <class Format, class... Args>
  void operator()(const Format& format, const Args&... args) {
    if (!first) out.append(std::string_view(",\n"));
    first = false;
    fmt::format_to(fmt::appender(out), format, args...);
  }
};

// A compute action's "args" object.
struct PassArgs {
  const Action& action;
};

// A number with six decimals, trailing zeros dropped ("2.5", "3").
struct Number {
  double value;
};

}  // namespace
}  // namespace pipesim

template <>
struct fmt::formatter<pipesim::Us> : fmt::formatter<std::int64_t> {
  auto format(pipesim::Us v, format_context& ctx) const {
    return fmt::format_to(ctx.out(), "{}.{:03}", v.ns / 1000, v.ns % 1000);
  }
};

template <>
struct fmt::formatter<pipesim::PassArgs> {
  constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
  auto format(const pipesim::PassArgs& p, format_context& ctx) const {
    auto& a = p.action;
    if (a.op == pipesim::Op::OverlapFB)
      return fmt::format_to(ctx.out(), R"({{"forward":"{}","backward":"{}","stage":{},"microbatch":{},"op":"OVERLAP_F_B"}})",
                            a.pass[0], a.pass[1], a.stage(), a.microbatch());
    return fmt::format_to(ctx.out(), R"({{"stage":{},"microbatch":{},"op":"{}"}})", a.stage(), a.microbatch(),
                          pipesim::op_name(a.op));
  }
};

template <>
struct fmt::formatter<pipesim::Number> {
  constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
  auto format(pipesim::Number n, format_context& ctx) const {
    char text[512];
    auto end = fmt::format_to_n(text, sizeof text, FMT_COMPILE("{:.6f}"), n.value).out;
    if (end > text + sizeof text) end = text + sizeof text;  // cannot happen below 1e500
    while (end > text && end[-1] == '0') --end;
    if (end > text && end[-1] == '.') --end;
    return std::copy(text, end, ctx.out());
  }
};

namespace pipesim {

std::string to_chrome_trace(const Timeline& t) {
  fmt::memory_buffer out;
  fmt::format_to(fmt::appender(out),
      R"({{"displayTimeUnit":"ns","otherData":{{"generator":"pipesim","schedule":"{}","ranks":{},"stages":{},"microbatches":{}}},)"
      "\n\"traceEvents\":[\n",
      t.schedule->name, t.schedule->ranks, t.schedule->stages, t.schedule->microbatches);
  out.reserve(out.size() + 150 * (t.spans.size() + t.memory.size()) + 200 * t.kernels.size());
  Writer emit{out};
  // Transfers that overlap in time go to separate lanes so every thread's slices nest.
  std::vector<std::vector<std::int64_t>> lane_end(static_cast<std::size_t>(t.schedule->ranks));
  std::vector<int> lane_of(t.spans.size(), 0);
  for (std::size_t i = 0; i < t.spans.size(); ++i) {
    auto& span = t.spans[i];
    if (span.stream != Stream::P2P) continue;
    auto& lanes = lane_end[static_cast<std::size_t>(span.rank)];
    std::size_t lane = 0;
    while (lane < lanes.size() && lanes[lane] > span.start_ns) ++lane;
    if (lane == lanes.size()) lanes.push_back(0);
    lanes[lane] = span.end_ns;
    lane_of[i] = static_cast<int>(lane);
  }
  // GPU kernels (measured runs): one lane per rank and stream, after the pipeline's lanes.
  std::vector<std::set<std::uint32_t>> gpu_streams(static_cast<std::size_t>(t.schedule->ranks));
  for (auto& k : t.kernels)
    if (k.rank >= 0 && k.rank < t.schedule->ranks) gpu_streams[static_cast<std::size_t>(k.rank)].insert(k.stream);
  bool has_ep = false, has_dp = false;
  for (auto& span : t.spans) {
    has_ep = has_ep || span.stream == Stream::EP;
    has_dp = has_dp || span.stream == Stream::DP;
  }
  for (int r = 0; r < t.schedule->ranks; ++r) {
    emit(FMT_COMPILE(R"({{"name":"process_name","ph":"M","pid":{},"args":{{"name":"rank {}"}}}})"), r, r);
    emit(FMT_COMPILE(R"({{"name":"process_sort_index","ph":"M","pid":{},"args":{{"sort_index":{}}}}})"), r, r);
    emit(FMT_COMPILE(R"({{"name":"thread_name","ph":"M","pid":{},"tid":0,"args":{{"name":"compute"}}}})"), r);
    if (has_ep)
      emit(FMT_COMPILE(R"({{"name":"thread_name","ph":"M","pid":{},"tid":100,"args":{{"name":"EP all-to-all"}}}})"), r);
    if (has_dp)
      emit(FMT_COMPILE(R"({{"name":"thread_name","ph":"M","pid":{},"tid":101,"args":{{"name":"DP and optimizer"}}}})"), r);
    for (auto stream : gpu_streams[static_cast<std::size_t>(r)])
      if (stream == kHostStream)
        emit(FMT_COMPILE(R"({{"name":"thread_name","ph":"M","pid":{},"tid":{},"args":{{"name":"CPU operators"}}}})"), r,
                         lane_of_stream(stream));
      else
        emit(FMT_COMPILE(R"({{"name":"thread_name","ph":"M","pid":{},"tid":{},"args":{{"name":"GPU stream {}"}}}})"), r,
                         lane_of_stream(stream), stream);
    auto lanes = lane_end[static_cast<std::size_t>(r)].size();
    for (std::size_t lane = 0; lane < lanes; ++lane)
      emit(FMT_COMPILE(R"({{"name":"thread_name","ph":"M","pid":{},"tid":{},"args":{{"name":"p2p send{}"}}}})"), r,
                       lane + 1, lane ? fmt::format(" {}", lane + 1) : std::string());
  }
  // Flow id -> its "f" event (at the receiving wait), emitted after every "s", in id order.
  struct FlowEnd {
    std::int64_t id = -1, ts_ns = 0;
    int rank = 0;
  };
  std::vector<FlowEnd> flow_ends;
  for (std::size_t i = 0; i < t.spans.size(); ++i) {
    auto& span = t.spans[i];
    auto& name = span.action;
    Us ts{span.start_ns}, dur{span.end_ns - span.start_ns};
    if (span.stream == Stream::EP) {  // inside the compute action it names
      emit(FMT_COMPILE(R"({{"name":"{}","cat":"ep","ph":"X","ts":{},"dur":{},"pid":{},"tid":100,"args":{{"during":"{}"}}}})"),
                       span.label ? span.label : "comm", ts, dur, span.rank, name);
      continue;
    }
    if (span.stream == Stream::DP) {  // after the pipeline: belongs to no action
      emit(FMT_COMPILE(R"({{"name":"{}","cat":"dp","ph":"X","ts":{},"dur":{},"pid":{},"tid":101,"args":{{}}}})"),
                       span.label ? span.label : "comm", ts, dur, span.rank);
      continue;
    }
    if (span.stream == Stream::P2P) {
      int tid = lane_of[i] + 1;
      emit(
          FMT_COMPILE(R"({{"name":"{}","cat":"p2p","ph":"X","ts":{},"dur":{},"pid":{},"tid":{},"args":{{"to_rank":{},"bytes":{},"stage":{},"microbatch":{},"op":"{}"}}}})"),
          name, ts, dur, span.rank, tid, span.peer, span.bytes, span.action.stage(), span.action.microbatch(),
          op_name(span.action.op));
      emit(FMT_COMPILE(R"({{"name":"transfer","cat":"p2p","ph":"s","id":{},"ts":{},"pid":{},"tid":{}}})"), span.flow, ts,
                       span.rank, tid);
      continue;
    }
    if (!span.action.is_compute()) {
      emit(
          FMT_COMPILE(R"({{"name":"{}","cat":"wait","ph":"X","ts":{},"dur":{},"pid":{},"tid":0,"args":{{"from_rank":{},"stage":{},"microbatch":{},"op":"{}"}}}})"),
          name, ts, dur, span.rank, span.peer, span.action.stage(), span.action.microbatch(), op_name(span.action.op));
      if (span.flow >= 0) flow_ends.push_back({span.flow, span.start_ns, span.rank});
      continue;
    }
    emit(FMT_COMPILE(R"({{"name":"{}","cat":"{}","ph":"X","ts":{},"dur":{},"pid":{},"tid":0,"args":{}}})"), name,
                     op_name(span.action.op), ts, dur, span.rank, PassArgs{span.action});
  }
  // Sorted by id, the last one for an id kept (as a map assigned in span order would).
  std::stable_sort(flow_ends.begin(), flow_ends.end(), [](auto& a, auto& b) { return a.id < b.id; });
  for (std::size_t i = 0; i < flow_ends.size(); ++i) {
    auto& f = flow_ends[i];
    if (i + 1 < flow_ends.size() && flow_ends[i + 1].id == f.id) continue;
    emit(FMT_COMPILE(R"({{"name":"transfer","cat":"p2p","ph":"f","bp":"e","id":{},"ts":{},"pid":{},"tid":0}})"), f.id,
         Us{f.ts_ns}, f.rank);
  }
  for (auto& k : t.kernels) {
    if (k.rank < 0 || k.rank >= t.schedule->ranks) continue;
    auto args = k.bytes > 0 ? fmt::format(R"({{"bytes":{}}})", k.bytes) : std::string("{}");
    if (k.op >= 0)  // the operator that launched it and its work, as the hardware-profile fit reads them
      args = fmt::format(R"({{"op":{},"kind":"{}","pass":"{}","flops":{},"op_bytes":{},"min_dim":{}}})", k.op,
                         op_kind_name(k.work.kind), k.work.pass, Number{k.work.flops}, Number{k.work.bytes},
                         Number{k.work.min_dim});
    emit(FMT_COMPILE(R"({{"name":{},"cat":"{}","ph":"X","ts":{},"dur":{},"pid":{},"tid":{},"args":{}}})"),
                     nlohmann::json(k.name).dump(), k.stream == kHostStream ? "cpu" : "gpu", Us{k.start_ns},
                     Us{k.end_ns - k.start_ns}, k.rank, lane_of_stream(k.stream), args);
  }
  for (auto& sample : t.memory)
    emit(FMT_COMPILE(R"({{"name":"live activations","ph":"C","ts":{},"pid":{},"args":{{"stage micro-batches":{},"bytes":{}}}}})"),
                     Us{sample.time_ns}, sample.rank, Number{sample.activations}, Number{sample.bytes});
  out.append(std::string_view("\n]}\n"));
  return fmt::to_string(out);
}

}  // namespace pipesim
