// Reading and writing RunRecord files (see timeline_file.hpp). A span is a compact array
// [rank, stream, action, start_ns, end_ns, bytes, peer, flow] so a long run stays small.
#include "traces/timeline_file.hpp"

#include <cmath>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/json.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

const char* stream_name(Stream s) {
  switch (s) {
    case Stream::Compute: return "compute";
    case Stream::P2P: return "p2p";
    case Stream::EP: return "ep";
    case Stream::DP: return "dp";
  }
  return "compute";
}

Stream parse_stream(const std::string& s, const std::string& where) {
  for (auto k : {Stream::Compute, Stream::P2P, Stream::EP, Stream::DP})
    if (s == stream_name(k)) return k;
  throw Error(fmt::format("{}: unknown stream '{}'", where, s));
}

}  // namespace

nlohmann::json span_to_json(const Span& s) {
  return {s.rank, stream_name(s.stream), s.stream == Stream::DP ? "" : to_string(s.action), s.start_ns, s.end_ns,
          s.bytes, s.peer, s.flow};
}

Span span_from_json(const JsonReader& a, int ranks) {
  auto fields = a.elements();
  if (fields.size() != 8)
    a.fail(fmt::format("expected [rank, stream, action, start_ns, end_ns, bytes, peer, flow], got {}", a.node().dump()));
  Span s;
  s.rank = fields[0].get<int>();
  if (s.rank < 0 || s.rank >= ranks) fields[0].fail(fmt::format("rank {} is not in 0..{}", s.rank, ranks - 1));
  s.stream = parse_stream(fields[1].get<std::string>(), fields[1].path());
  auto text_action = fields[2].get<std::string>();
  if (!text_action.empty()) {
    try {
      s.action = parse_action(text_action);
    } catch (const Error& e) {
      fields[2].fail(e.what());
    }
  }
  s.start_ns = fields[3].get<std::int64_t>();
  s.end_ns = fields[4].get<std::int64_t>();
  if (s.end_ns < s.start_ns) a.fail("ends before it starts");
  s.bytes = fields[5].get<std::int64_t>();
  s.peer = fields[6].get<int>();
  s.flow = fields[7].get<std::int64_t>();
  return s;
}

std::string_view op_kind_name(OpKind kind) {
  switch (kind) {
    case OpKind::Gemm: return "gemm";
    case OpKind::Attention: return "attention";
    case OpKind::Memory: return "memory";
    case OpKind::Comm: return "comm";
    case OpKind::None: break;
  }
  return "";
}

nlohmann::json kernel_to_json(const KernelSpan& k) {
  nlohmann::json out{k.rank, k.stream, k.name, k.start_ns, k.end_ns, k.bytes};
  if (k.op >= 0)
    for (nlohmann::json v : {nlohmann::json(k.op), nlohmann::json(op_kind_name(k.work.kind)),
                             nlohmann::json(std::string(1, k.work.pass)), nlohmann::json(k.work.flops),
                             nlohmann::json(k.work.bytes), nlohmann::json(k.work.min_dim)})
      out.push_back(std::move(v));
  return out;
}

KernelSpan kernel_from_json(const JsonReader& a, int ranks) {
  auto fields = a.elements();
  if (fields.size() != 6 && fields.size() != 12)
    a.fail(fmt::format("expected [rank, stream, name, start_ns, end_ns, bytes] or those followed by [op, kind, pass, "
                       "flops, op_bytes, min_dim], got {}",
                       a.node().dump()));
  KernelSpan k;
  k.rank = fields[0].get<int>();
  if (k.rank < 0 || k.rank >= ranks) fields[0].fail(fmt::format("rank {} is not in 0..{}", k.rank, ranks - 1));
  auto stream = fields[1].get<std::int64_t>();
  if (stream < 0 || stream > 0xffffffffLL) fields[1].fail(fmt::format("stream {} is not a CUDA stream id", stream));
  k.stream = static_cast<std::uint32_t>(stream);
  k.name = fields[2].get<std::string>();
  k.start_ns = fields[3].get<std::int64_t>();
  k.end_ns = fields[4].get<std::int64_t>();
  if (k.end_ns < k.start_ns) a.fail("ends before it starts");
  k.bytes = fields[5].get<std::int64_t>();
  if (k.bytes < 0) fields[5].fail(fmt::format("{} bytes", k.bytes));
  if (fields.size() == 6) return k;
  k.op = fields[6].get<std::int64_t>();
  if (k.op < 0) fields[6].fail(fmt::format("operator number {} is negative", k.op));
  auto kind = fields[7].get<std::string>();
  for (auto c : {OpKind::Gemm, OpKind::Attention, OpKind::Memory, OpKind::Comm})
    if (kind == op_kind_name(c)) k.work.kind = c;
  if (k.work.kind == OpKind::None)
    fields[7].fail(fmt::format("unknown operator kind '{}' (gemm, attention, memory, comm)", kind));
  auto pass = fields[8].get<std::string>();
  if (pass != "F" && pass != "I" && pass != "W") fields[8].fail(fmt::format("pass '{}' is not F, I or W", pass));
  k.work.pass = pass[0];
  double* values[] = {&k.work.flops, &k.work.bytes, &k.work.min_dim};
  for (int i = 0; i < 3; ++i) {
    *values[i] = fields[std::size_t(9 + i)].get<double>();
    if (!(*values[i] >= 0) || !std::isfinite(*values[i]))
      fields[std::size_t(9 + i)].fail(fmt::format("{} is not a finite count >= 0", *values[i]));
  }
  if (k.work.kind == OpKind::Gemm && k.work.flops > 0 && k.work.min_dim < 1)
    fields[11].fail(fmt::format("a GEMM of {} FLOPs needs a smallest dimension of at least 1", k.work.flops));
  return k;
}

std::string to_json_text(const RunRecord& r) {
  nlohmann::ordered_json j = to_json(r.schedule);
  j["source"] = r.source;
  j["workload"] = r.workload;
  j["microbenchmark"] = {{"p2p_latency_ns", r.links.p2p_latency_ns},
                         {"p2p_bandwidth_GBps", r.links.p2p_bandwidth_GBps},
                         {"activation_bytes", r.links.activation_bytes},
                         {"all_to_all_GBps", r.links.all_to_all_GBps}};
  std::string out = j.dump(1);
  out.pop_back();  // the closing brace; steps follow one span per line
  // Per step, one element per line: a long run stays diffable and quick to write.
  auto lists = [&](const char* key, const auto& steps, const auto& element_json) {
    out += fmt::format(",\n \"{}\": [", key);
    for (std::size_t k = 0; k < steps.size(); ++k) {
      out += k ? ",\n  [" : "\n  [";
      for (std::size_t i = 0; i < steps[k].size(); ++i) {
        out += i ? ",\n   " : "\n   ";
        out += element_json(steps[k][i]).dump();
      }
      out += "]";
    }
    out += "\n ]";
  };
  lists("steps", r.steps, span_to_json);
  if (!r.kernels.empty()) lists("kernels", r.kernels, kernel_to_json);
  return out + "\n}\n";
}

RunRecord parse_run_record(const std::string& text, const std::string& source) {
  auto document = parse_json(text, source);
  JsonReader j(document, source);
  j.expect_object();
  if (j.has("durations") && !j.has("steps"))
    j.fail("this is a calibration (from `pipesim calibrate`), not a timeline; give a run's --timeline file or "
           "`simulate --timeline`'s");
  RunRecord r;
  r.schedule = schedule_from_json(j);
  validate(r.schedule);
  r.source = j.optional<std::string>("source", "");
  r.workload = j.has("workload") ? j.child("workload").node() : nlohmann::json::object();
  auto mb = j.child("microbenchmark");
  r.links.p2p_latency_ns = mb.optional<double>("p2p_latency_ns", 0.0);
  r.links.p2p_bandwidth_GBps = mb.optional<double>("p2p_bandwidth_GBps", 0.0);
  r.links.activation_bytes = mb.optional<std::int64_t>("activation_bytes", 0);
  r.links.all_to_all_GBps = mb.optional<double>("all_to_all_GBps", 0.0);
  auto steps = j.child("steps").elements();
  if (steps.empty()) j.child("steps").fail("expected a non-empty list of steps");
  for (auto& step : steps) {
    std::vector<Span> spans;
    for (auto& a : step.elements()) spans.push_back(span_from_json(a, r.schedule.ranks));
    r.steps.push_back(std::move(spans));
  }
  if (j.has("kernels")) {
    auto steps_k = j.child("kernels").elements();
    if (steps_k.size() != r.steps.size())
      j.child("kernels").fail(fmt::format("{} steps of kernels for {} steps of spans", steps_k.size(), r.steps.size()));
    for (auto& step : steps_k) {
      std::vector<KernelSpan> kernels;
      for (auto& a : step.elements()) kernels.push_back(kernel_from_json(a, r.schedule.ranks));
      r.kernels.push_back(std::move(kernels));
    }
  }
  return r;
}

}  // namespace pipesim
