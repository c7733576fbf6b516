// Reading and writing RunRecord files (see timeline_file.hpp). A span is a compact array
// [rank, stream, action, start_ns, end_ns, bytes, peer, flow] so a long run stays small.
#include "traces/timeline_file.hpp"

#include <fmt/format.h>

#include "common/error.hpp"

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

std::string to_json_text(const RunRecord& r) {
  nlohmann::ordered_json j;
  j["schedule"] = r.schedule;
  j["ranks"] = r.ranks;
  j["stages"] = r.stages;
  j["microbatches"] = r.microbatches;
  j["virtual_stages"] = r.virtual_stages;
  j["stage_to_rank"] = r.stage_to_rank;
  j["source"] = r.source;
  j["workload"] = r.workload;
  j["microbenchmark"] = {{"p2p_latency_ns", r.p2p_latency_ns},
                         {"p2p_bandwidth_GBps", r.p2p_bandwidth_GBps},
                         {"activation_bytes", r.activation_bytes},
                         {"all_to_all_GBps", r.all_to_all_GBps}};
  std::string out = j.dump(1);
  out.pop_back();  // the closing brace; steps follow one span per line
  out += ",\n \"steps\": [";
  for (std::size_t k = 0; k < r.steps.size(); ++k) {
    out += k ? ",\n  [" : "\n  [";
    for (std::size_t i = 0; i < r.steps[k].size(); ++i) {
      auto& s = r.steps[k][i];
      out += fmt::format("{}\n   [{},\"{}\",\"{}\",{},{},{},{},{}]", i ? "," : "", s.rank, stream_name(s.stream),
                         s.stream == Stream::DP ? "" : to_string(s.action), s.start_ns,
                         s.end_ns, s.bytes, s.peer, s.flow);
    }
    out += "]";
  }
  return out + "\n ]\n}\n";
}

RunRecord parse_run_record(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(fmt::format("{}: not valid JSON (truncated?): {}", source, e.what()));
  }
  RunRecord r;
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key)) throw Error(fmt::format("{}: missing field '{}'", source, key));
    return j[key];
  };
  try {
    r.schedule = field("schedule").get<std::string>();
    r.ranks = field("ranks").get<int>();
    r.stages = field("stages").get<int>();
    r.microbatches = field("microbatches").get<int>();
    r.virtual_stages = j.value("virtual_stages", 2);
    r.stage_to_rank = field("stage_to_rank").get<std::vector<int>>();
    r.source = j.value("source", "");
    r.workload = j.value("workload", nlohmann::json::object());
    auto& mb = field("microbenchmark");
    r.p2p_latency_ns = mb.value("p2p_latency_ns", 0.0);
    r.p2p_bandwidth_GBps = mb.value("p2p_bandwidth_GBps", 0.0);
    r.activation_bytes = mb.value("activation_bytes", std::int64_t{0});
    r.all_to_all_GBps = mb.value("all_to_all_GBps", 0.0);
  } catch (const nlohmann::json::type_error& e) {
    throw Error(fmt::format("{}: a field has the wrong type: {}", source, e.what()));
  }
  auto& steps = field("steps");
  if (!steps.is_array() || steps.empty()) throw Error(fmt::format("{}: steps: expected a non-empty list", source));
  for (std::size_t k = 0; k < steps.size(); ++k) {
    std::vector<Span> spans;
    for (std::size_t i = 0; i < steps[k].size(); ++i) {
      auto& a = steps[k][i];
      auto where = fmt::format("{}: steps[{}][{}]", source, k, i);
      if (!a.is_array() || a.size() != 8 || !a[0].is_number_integer() || !a[1].is_string() || !a[2].is_string() ||
          !a[3].is_number_integer() || !a[4].is_number_integer())
        throw Error(fmt::format("{}: expected [rank, stream, action, start_ns, end_ns, bytes, peer, flow], got {}", where,
                                a.dump()));
      Span s;
      s.rank = a[0].get<int>();
      if (s.rank < 0 || s.rank >= r.ranks) throw Error(fmt::format("{}: rank {} is not in 0..{}", where, s.rank, r.ranks - 1));
      s.stream = parse_stream(a[1].get<std::string>(), where);
      auto text_action = a[2].get<std::string>();
      if (!text_action.empty()) s.action = parse_action(text_action);
      s.start_ns = a[3].get<std::int64_t>();
      s.end_ns = a[4].get<std::int64_t>();
      if (s.end_ns < s.start_ns) throw Error(fmt::format("{}: ends before it starts", where));
      s.bytes = a[5].get<std::int64_t>();
      s.peer = a[6].get<int>();
      s.flow = a[7].get<std::int64_t>();
      spans.push_back(s);
    }
    r.steps.push_back(std::move(spans));
  }
  return r;
}

}  // namespace pipesim
