// The Kineto reader on hand-written traces (every field, exact ns, interning, the bare-array form, base
// time), its errors (each prefix of a trace is reported truncated; schema errors name the JSON path), gzip
// files, and the DeepSeek profile. A slow reference over nlohmann's DOM checks the scanner on the real
// trace and on thousands of mutated ones (whatever nlohmann refuses, the scanner must refuse too).
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "traces/kineto_reader.hpp"

namespace pipesim {
namespace {

using nlohmann::json;

constexpr const char* kTrace = R"json({
  "schemaVersion": 1,
  "deviceProperties": [{"id": 0, "name": "NVIDIA H800", "numSms": 132}, {"id": 1, "name": "other", "numSms": 1}],
  "distributedInfo": {"backend": "nccl", "rank": 3, "world_size": 64},
  "traceEvents": [
    {"ph": "M", "name": "process_name", "pid": 1166, "tid": 0, "ts": 1, "args": {"name": "python3"}},
    {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1166, "tid": 1166, "ts": 1740461679471346.123,
     "dur": 12.5, "args": {"External id": 7, "Input Dims": [[2048, 7168], [7168, 512]],
     "Input type": ["c10::BFloat16", "c10::BFloat16"]}},
    {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1166, "tid": 1166,
     "ts": 1740461679471350, "dur": 4, "args": {"External id": 7, "cbid": 211, "correlation": 44479}},
    {"args": {"External id": 7, "device": 0, "stream": 27, "correlation": 44479, "grid": [4096, 1, 1],
     "blocks per SM": 31.030304, "nested": {"a": [true, false, null, "x\"y"]}}, "dur": 52,
     "ts": 1740461679471360.0005, "tid": 27, "pid": 0, "name": "void gemm<128, \"x\">(float const*)",
     "cat": "kernel", "ph": "X"},
    {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoD (Device -> Device)", "pid": 0, "tid": 7,
     "ts": 1740461679476346, "dur": 1, "args": {"device": 0, "stream": 7, "correlation": 45234}},
    {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "pid": 0, "tid": 7, "ts": 1740461679476350,
     "dur": 0.0004, "args": {"device": 1, "stream": 7, "correlation": 45235}},
    {"ph": "X", "cat": "cuda_driver", "name": "cuLaunchKernel", "pid": 1166, "tid": 1166, "ts": 1.5e3,
     "dur": 2E-3, "args": {"correlation": 45236}},
    {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 1166, "tid": 1166,
     "ts": 1740461679470813, "dur": 112202, "args": {"External id": 4609}},
    {"ph": "X", "cat": "gpu_user_annotation", "name": "ProfilerStep#1", "pid": 0, "tid": 27,
     "ts": 1740461679470900, "dur": 100},
    {"ph": "X", "cat": "cpu_op", "name": "aten::\u006dm", "pid": "Traces", "tid": "PyTorch \u00e9\ud83d\ude00",
     "ts": 5, "dur": 1},
    {"ph": "s", "id": 44479, "pid": 1166, "tid": 1166, "ts": 1740461679471350, "cat": "ac2g", "name": "ac2g"},
    {"ph": "f", "id": 44479, "pid": 0, "tid": 27, "ts": 1740461679471360, "cat": "ac2g", "name": "ac2g", "bp": "e"},
    {"name": "Iteration Start: PyTorch Profiler", "ph": "i", "s": "g", "pid": "Traces",
     "tid": "Trace PyTorch Profiler", "ts": 1740461679470630},
    {"ph": "X", "cat": "Trace", "name": "PyTorch Profiler (0)", "pid": "Spans", "tid": "PyTorch Profiler",
     "ts": 1, "dur": 2}
  ],
  "traceName": "x.pt.trace.json"
})json";

// The slow reference: the same selection and conversions over nlohmann's DOM.
struct Expected {
  KinetoKind kind;
  std::string name, thread;
  std::int64_t ts_ns, dur_ns, correlation, external_id;
  int stream, device;
  json input_dims, input_types;
  bool exact_ts, exact_dur, check_thread;
};

std::optional<KinetoKind> kind_of(const json& e) {
  if (!e.is_object() || e.value("ph", json()) != "X" || !e.contains("cat") || !e["cat"].is_string()) return std::nullopt;
  static const std::map<std::string, KinetoKind> kinds = {
      {"kernel", KinetoKind::Kernel},          {"gpu_memcpy", KinetoKind::Memcpy}, {"gpu_memset", KinetoKind::Memset},
      {"cuda_runtime", KinetoKind::Runtime},   {"cuda_driver", KinetoKind::Runtime},
      {"user_annotation", KinetoKind::Annotation}, {"cpu_op", KinetoKind::CpuOp}};
  auto it = kinds.find(e["cat"].get<std::string>());
  return it == kinds.end() ? std::nullopt : std::optional(it->second);
}

std::vector<Expected> reference(const json& doc) {
  const json& events = doc.is_array() ? doc : doc.at("traceEvents");
  std::int64_t base = doc.is_object() ? doc.value("baseTimeNanoseconds", std::int64_t{0}) : 0;
  std::vector<Expected> out;
  for (auto& e : events) {
    auto kind = kind_of(e);
    if (!kind) continue;
    auto ns = [](const json& v) {
      return v.is_number_integer() ? v.get<std::int64_t>() * 1000 : std::llround(v.get<double>() * 1000.0);
    };
    auto part = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
    json args = e.contains("args") && e["args"].is_object() ? e["args"] : json::object();
    auto arg = [&](const char* key) { return args.contains(key) && !args[key].is_null() ? args[key].get<std::int64_t>() : -1; };
    out.push_back({*kind, e.value("name", ""), part(e.value("pid", json(""))) + "/" + part(e.value("tid", json(""))),
                   ns(e["ts"]) + base, ns(e["dur"]), arg("correlation"), arg("External id"),
                   static_cast<int>(arg("stream")), static_cast<int>(arg("device")),
                   args.value("Input Dims", json()), args.value("Input type", json()), e["ts"].is_number_integer(),
                   e["dur"].is_number_integer(),
                   !e.value("pid", json("")).is_number_float() && !e.value("tid", json("")).is_number_float()});
  }
  return out;
}

// Doubles carry ~16 digits: a fractional timestamp of today's clock is only known to ~250 ns that way.
void expect_near_ns(std::int64_t got, std::int64_t want, bool exact, const std::string& what) {
  if (exact) {
    EXPECT_EQ(got, want) << what;
    return;
  }
  EXPECT_LE(std::fabs(static_cast<double>(got - want)), std::fabs(static_cast<double>(want)) * 2e-16 + 1) << what;
}

void expect_matches_reference(const KinetoTrace& t, const json& doc) {
  auto want = reference(doc);
  ASSERT_EQ(t.events.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    auto& e = t.events[i];
    auto& w = want[i];
    auto at = "event " + std::to_string(i);
    EXPECT_EQ(e.kind, w.kind) << at;
    EXPECT_EQ(t.name_of(e.name), w.name) << at;
    if (w.check_thread) {
      EXPECT_EQ(t.name_of(e.thread), w.thread) << at;
    }
    expect_near_ns(e.ts_ns, w.ts_ns, w.exact_ts, at);
    expect_near_ns(e.dur_ns, w.dur_ns, w.exact_dur, at);
    EXPECT_EQ(e.correlation, w.correlation) << at;
    EXPECT_EQ(e.external_id, w.external_id) << at;
    EXPECT_EQ(e.stream, w.stream) << at;
    EXPECT_EQ(e.device, w.device) << at;
    EXPECT_EQ(e.input_dims ? json::parse(t.name_of(e.input_dims)) : json(), w.input_dims) << at;
    EXPECT_EQ(e.input_types ? json::parse(t.name_of(e.input_types)) : json(), w.input_types) << at;
  }
}

// The message of the Error that parsing `text` throws ("" when it parses), checking its exit code.
std::string error_of(std::string_view text) {
  try {
    parse_kineto(text, "t.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2) << e.what();
    return e.what();
  }
  return "";
}

TEST(Kineto, ReadsEveryField) {
  auto t = parse_kineto(kTrace, "t.json");
  EXPECT_EQ(t.source, "t.json");
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.world_size, 64);
  EXPECT_EQ(t.device_name, "NVIDIA H800");
  EXPECT_EQ(t.device_sms, 132);
  EXPECT_EQ(t.base_time_ns, 0);
  EXPECT_EQ(t.bytes_read, static_cast<std::int64_t>(std::strlen(kTrace)));
  EXPECT_EQ(t.names[0], "");
  ASSERT_EQ(t.events.size(), 8u);  // not: metadata, gpu_user_annotation, flows, the instant, "Trace"
  using K = KinetoKind;
  std::vector<K> kinds;
  for (auto& e : t.events) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<K>{K::CpuOp, K::Runtime, K::Kernel, K::Memcpy, K::Memset, K::Runtime, K::Annotation, K::CpuOp}));

  auto& op = t.events[0];
  EXPECT_EQ(t.name_of(op.name), "aten::mm");
  EXPECT_EQ(t.name_of(op.thread), "1166/1166");
  EXPECT_EQ(op.ts_ns, 1740461679471346123);  // exact, where a double would be 250 ns off
  EXPECT_EQ(op.dur_ns, 12500);
  EXPECT_EQ(op.external_id, 7);
  EXPECT_EQ(op.correlation, -1);
  EXPECT_EQ(op.stream, -1);
  EXPECT_EQ(t.name_of(op.input_dims), "[[2048, 7168], [7168, 512]]");  // the raw text
  EXPECT_EQ(t.name_of(op.input_types), R"(["c10::BFloat16", "c10::BFloat16"])");

  auto& launch = t.events[1];
  EXPECT_EQ(launch.correlation, 44479);
  EXPECT_EQ(launch.thread, op.thread);
  EXPECT_EQ(launch.input_dims, 0u);

  auto& kernel = t.events[2];  // keys in reverse order, args first
  EXPECT_EQ(t.name_of(kernel.name), R"(void gemm<128, "x">(float const*))");
  EXPECT_EQ(t.name_of(kernel.thread), "0/27");
  EXPECT_EQ(kernel.ts_ns, 1740461679471360001);  // .0005 us rounds half up
  EXPECT_EQ(kernel.dur_ns, 52000);
  EXPECT_EQ(kernel.correlation, launch.correlation);
  EXPECT_EQ(kernel.external_id, 7);
  EXPECT_EQ(kernel.stream, 27);
  EXPECT_EQ(kernel.device, 0);

  EXPECT_EQ(t.events[3].stream, 7);
  EXPECT_EQ(t.events[4].dur_ns, 0);  // 0.0004 us rounds down
  EXPECT_EQ(t.events[4].device, 1);
  EXPECT_EQ(t.events[5].ts_ns, 1'500'000);  // 1.5e3 us, through the double fallback
  EXPECT_EQ(t.events[5].dur_ns, 2);
  EXPECT_EQ(t.name_of(t.events[6].name), "ProfilerStep#1");
  EXPECT_EQ(t.events[6].dur_ns, 112'202'000);

  auto& last = t.events[7];
  EXPECT_EQ(last.name, op.name);  // "aten::\u006dm" is "aten::mm": interned once
  EXPECT_EQ(t.name_of(last.thread), "Traces/PyTorch \u00e9\U0001F600");
  std::set<std::string> distinct(t.names.begin(), t.names.end());
  EXPECT_EQ(distinct.size(), t.names.size());

  expect_matches_reference(t, json::parse(kTrace));
}

TEST(Kineto, BareArrayAndBaseTime) {
  auto t = parse_kineto(R"([{"ph":"X","cat":"kernel","name":"k","pid":0,"tid":7,"ts":10,"dur":2}] )", "a.json");
  ASSERT_EQ(t.events.size(), 1u);
  EXPECT_FALSE(t.rank);
  EXPECT_FALSE(t.world_size);
  EXPECT_EQ(t.device_name, "");
  EXPECT_EQ(t.device_sms, 0);
  EXPECT_EQ(t.events[0].ts_ns, 10'000);

  // baseTimeNanoseconds may follow the events; it is added to every ts, never to dur.
  auto b = parse_kineto(R"({"traceEvents":[{"ph":"X","cat":"cpu_op","name":"a","pid":1,"tid":1,"ts":1.5,"dur":3}],
                            "baseTimeNanoseconds": 1700000000000000000})", "b.json");
  EXPECT_EQ(b.base_time_ns, 1'700'000'000'000'000'000);
  EXPECT_EQ(b.events[0].ts_ns, 1'700'000'000'000'001'500);
  EXPECT_EQ(b.events[0].dur_ns, 3000);
}

TEST(Kineto, TimesAreExactIntegerNanoseconds) {
  auto ts_of = [](const std::string& ts) {
    return parse_kineto(R"([{"ph":"X","cat":"kernel","ts":)" + ts + R"(,"dur":0}])", "t.json").events[0].ts_ns;
  };
  EXPECT_EQ(ts_of("0"), 0);
  EXPECT_EQ(ts_of("1.2"), 1200);
  EXPECT_EQ(ts_of("1.0004999"), 1000);
  EXPECT_EQ(ts_of("1.0005"), 1001);
  EXPECT_EQ(ts_of("0.9995"), 1000);
  EXPECT_EQ(ts_of("-2.5"), -2500);
  EXPECT_EQ(ts_of("4611686018427387"), 4'611'686'018'427'387'000);  // times are bounded by 2^62 ns
  EXPECT_EQ(ts_of("2e0"), 2000);
  EXPECT_EQ(ts_of("100000000000000000000e-18"), 100'000);  // the integer part alone would overflow
  EXPECT_EQ(ts_of("1740461679471346.999999999"), 1740461679471347000);
  EXPECT_NE(error_of(R"([{"ph":"X","cat":"kernel","ts":4611686018427388,"dur":0}])").find("[0].ts: 4611686018427388 us is out of range"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"ph":"X","cat":"kernel","ts":9223372036854776,"dur":0}])").find("[0].ts: 9223372036854776 us is out of range"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"ph":"X","cat":"kernel","ts":1,"dur":4611686018427388}])").find("[0].dur:"), std::string::npos);
  EXPECT_NE(error_of(R"([{"ph":"X","cat":"kernel","ts":1e400,"dur":0}])").find("out of range"), std::string::npos);
  EXPECT_NE(error_of(R"([{"ph":"X","cat":"kernel","ts":1e300,"dur":0}])").find("out of range"), std::string::npos);
}

TEST(Kineto, Errors) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "t.json: the file is empty"},
      {" \n\t ", "t.json: the file is empty"},
      {"hello", "t.json: byte 0: expected a JSON value, got 'h'"},
      {"\x1f\x8b\x08", "t.json: byte 0: expected a JSON value, got byte 0x1f"},
      {R"({"traceEvents": {}})", "t.json: traceEvents: expected an array, got an object"},
      {R"({"traceEvents": "x"})", R"(t.json: traceEvents: expected an array, got "x")"},
      {R"({"foo": [1, 2]})", "t.json: not a Chrome/Kineto trace: no traceEvents array"},
      {"42", "t.json: not a Chrome/Kineto trace: the document is 42"},
      {R"({"traceEvents": []})", "t.json: the trace holds no events"},
      {"[]", "t.json: the trace holds no events"},
      {R"([{"ph":"M","name":"process_name"},{"ph":"X","cat":"python_function","ts":1,"dur":1}])",
       "t.json: the trace holds no kernel, memcpy, memset, CUDA runtime, annotation or CPU-op events (2 events"},
      {R"({"traceEvents": [{"ph": "M"}, {"ph": "X", "cat": "kernel", "ts": "abc", "dur": 1}]})",
       R"(t.json: traceEvents[1].ts: expected a number, got "abc")"},
      {R"({"traceEvents": [{"ph": "X", "cat": "kernel", "ts": 1}]})", R"(t.json: traceEvents[0]: a complete event without "dur")"},
      {R"([{"ph": "X", "cat": "cpu_op", "dur": 1}])", R"(t.json: [0]: a complete event without "ts")"},
      {R"({"traceEvents": [{"ph": "X", "cat": "kernel", "ts": 1, "dur": -1}]})", "t.json: traceEvents[0].dur: negative duration -1"},
      {R"({"traceEvents": [{"ph": "X", "cat": "kernel", "ts": 1, "dur": 1, "args": {"correlation": 1.5}}]})",
       "t.json: traceEvents[0].args.correlation: expected an integer, got 1.5"},
      {R"({"traceEvents": [{"ph": "X", "cat": "kernel", "ts": 1, "dur": 1, "args": {"External id": "7"}}]})",
       R"(t.json: traceEvents[0].args["External id"]: expected an integer, got "7")"},
      {R"({"traceEvents": [{"ph": "X", "cat": "kernel", "ts": 1, "dur": 1, "name": 5}]})",
       "t.json: traceEvents[0].name: expected a string, got 5"},
      {R"({"traceEvents": [{"ph": "X", "cat": "kernel", "ts": 1, "dur": 1, "pid": [1]}]})",
       "t.json: traceEvents[0].pid: expected a number or a string, got an array"},
      {R"({"traceEvents": [3]})", "t.json: traceEvents[0]: expected an event object, got 3"},
      {R"({"distributedInfo": {"rank": "0"}, "traceEvents": []})", R"(t.json: distributedInfo.rank: expected an integer, got "0")"},
      // Syntax, also inside events that are skipped.
      {R"([{"ph":"X","cat":"kernel","ts":1,"dur":1}] x)", "t.json: byte 43: unexpected 'x' after the end of the JSON document"},
      {R"([{"ph":"X","cat":"kernel","ts":1,"dur":1},])", "t.json: byte 42: expected a JSON value, got ']'"},
      {R"([{"ph":"X","cat":"kernel","ts":1,"dur":1,}])", "t.json: byte 41: expected a string key, got '}'"},
      {R"([{"ph":"f","ts":01}])", "t.json: byte 17: expected ',' or '}', got '1'"},
      {R"([{"ph":"f","ts":1.}])", "t.json: byte 18: invalid number: expected a digit, got '}'"},
      {R"([{"ph":"f","ts":-}])", "t.json: byte 17: invalid number: expected a digit, got '}'"},
      {R"([{"ph":"f","ts":+1}])", "t.json: byte 16: expected a JSON value, got '+'"},
      {R"([{"ph":"f","x":tru}])", "t.json: byte 18: invalid literal: expected 'true', got '}'"},
      {R"([{"ph":"f","x":"a\x"}])", "t.json: byte 17: invalid escape in a string"},
      {R"([{"ph":"f","x":"\u12G4"}])", "t.json: byte 20: invalid \\u escape"},
      {R"([{"ph":"f","x":"\udc00"}])", "t.json: byte 16: invalid \\u escape: a lone low surrogate"},
      {R"([{"ph":"f","x":"\ud83d!"}])", "t.json: byte 16: invalid \\u escape: a high surrogate without its low half"},
      {"[{\"ph\":\"f\",\"x\":\"a\tb\"}]", "t.json: byte 17: control character 0x09 in a string"},
      {"[{\"ph\":\"f\",\"x\":\"\xff\"}]", "t.json: byte 16: invalid UTF-8"},
      {"[{\"ph\":\"f\",\"x\":\"\xc0\xaf\"}]", "t.json: byte 16: invalid UTF-8"},        // overlong '/'
      {"[{\"ph\":\"f\",\"x\":\"\xed\xa0\x80\"}]", "t.json: byte 16: invalid UTF-8"},    // a surrogate
      {R"([{"ph":"f" "x":1}])", "t.json: byte 11: expected ',' or '}', got '\"'"},
      {R"([{"ph":"f","x" 1}])", "t.json: byte 15: expected ':', got '1'"},
      {R"([{"ph":"f","args":{"a":[1 2]}}])", "t.json: byte 26: expected ',' or ']', got '2'"},
      {R"([{"ph":"f","args":{"a":{"b":1]}}])", "t.json: byte 29: expected ',' or '}', got ']'"},
  };
  for (auto& [text, want] : cases) EXPECT_EQ(error_of(text).substr(0, want.size()), want) << text;

  std::string deep = R"([{"ph":"f","args":)" + std::string(5000, '[') + std::string(5000, ']') + "}]";
  EXPECT_NE(error_of(deep).find("nesting deeper than 1000 levels"), std::string::npos);
}

TEST(Kineto, EveryPrefixIsTruncated) {
  std::string text = kTrace;
  for (std::size_t n = 0; n < text.size(); ++n) {
    auto prefix = std::string_view(text).substr(0, n);
    auto message = error_of(prefix);
    if (prefix.find_first_not_of(" \n") == std::string_view::npos) EXPECT_EQ(message, "t.json: the file is empty");
    else EXPECT_EQ(message, "t.json: byte " + std::to_string(n) + ": unexpected end of input (truncated file?)");
  }
}

// Random byte edits: what nlohmann refuses, the scanner refuses; what it accepts, the scanner reads as
// the reference does, or refuses as an event of the wrong shape (never as bad syntax). Numbers beyond a
// double's range are the one difference: valid syntax that nlohmann refuses.
TEST(Kineto, MutationsAgreeWithNlohmann) {
  const std::string base = kTrace;
  const std::string alphabet = "{}[],:\"\\ .0159eE+-tfnulx/\x7f\xc3\xa9\xff\xed";
  std::mt19937 rng(12345);
  int refused = 0, read = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    auto text = base;
    for (int edits = 1 + trial % 2; edits > 0; --edits) {
      auto at = std::uniform_int_distribution<std::size_t>(0, text.size() - 1)(rng);
      char c = alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
      switch (rng() % 3) {
        case 0: text[at] = c; break;
        case 1: text.insert(at, 1, c); break;
        default: text.erase(at, 1);
      }
    }
    auto message = error_of(text);
    json doc;
    try {
      doc = json::parse(text);
    } catch (const json::out_of_range&) {
      continue;  // a number beyond double's range ("1740E61679471360"): valid JSON syntax, refused by nlohmann
    } catch (const json::parse_error&) {
      EXPECT_NE(message, "") << "accepted what nlohmann refuses: " << text;
      ++refused;
      continue;
    }
    if (!message.empty()) {
      EXPECT_EQ(message.find(": byte "), std::string::npos) << message << "\n" << text;
      continue;
    }
    ++read;
    SCOPED_TRACE(text);
    expect_matches_reference(parse_kineto(text, "t.json"), doc);
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(refused, 1000);
  EXPECT_GT(read, 500);
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("kineto_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, std::string_view data) const {
    auto file = (path / name).string();
    std::ofstream(file, std::ios::binary) << data;
    return file;
  }
  std::string gzip(const std::string& name, std::initializer_list<std::string_view> members) const {
    auto file = (path / name).string();
    std::remove(file.c_str());
    for (auto member : members) {  // each gzopen in append mode starts a new gzip member
      gzFile gz = gzopen(file.c_str(), "ab");
      EXPECT_NE(gz, nullptr);
      EXPECT_EQ(gzwrite(gz, member.data(), static_cast<unsigned>(member.size())), static_cast<int>(member.size()));
      gzclose(gz);
    }
    return file;
  }
};

std::string slurp(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string read_error(const std::string& file) {
  try {
    read_kineto(file);
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    return e.what();
  }
  return "";
}

void expect_same(const KinetoTrace& a, const KinetoTrace& b) {
  EXPECT_EQ(a.names, b.names);
  ASSERT_EQ(a.events.size(), b.events.size());
  EXPECT_EQ(a.bytes_read, b.bytes_read);
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    auto fields = [](const KinetoEvent& e) {
      return std::tuple(e.kind, e.name, e.thread, e.ts_ns, e.dur_ns, e.correlation, e.external_id, e.stream, e.device,
                        e.input_dims, e.input_types);
    };
    EXPECT_TRUE(fields(a.events[i]) == fields(b.events[i])) << i;
  }
}

TEST(Kineto, Files) {
  TempDir dir;
  auto plain = parse_kineto(kTrace, "t.json");
  auto from_file = read_kineto(dir.write("t.json", kTrace));
  expect_same(from_file, plain);
  EXPECT_EQ(from_file.source, (dir.path / "t.json").string());

  // gzip is recognized by its magic bytes, whatever the name; a split into two members reads as one text.
  std::string_view text = kTrace;
  expect_same(read_kineto(dir.gzip("t.json", {text})), plain);
  expect_same(read_kineto(dir.gzip("t.gz", {text.substr(0, 1000), text.substr(1000)})), plain);

  auto gz = slurp(dir.gzip("x.json.gz", {text}));
  auto cut = dir.write("cut.json.gz", gz.substr(0, gz.size() / 2));
  EXPECT_EQ(read_error(cut), cut + ": gzip data is corrupt or truncated at byte " + std::to_string(gz.size() / 2));
  auto corrupt = gz;
  for (std::size_t i = 20; i < 40; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  auto bad = dir.write("bad.json.gz", corrupt);
  EXPECT_NE(read_error(bad).find(bad + ": gzip data is corrupt or truncated at byte "), std::string::npos);
  // A complete gzip of truncated text is a JSON error.
  auto short_text = dir.gzip("short.json.gz", {text.substr(0, 100)});
  EXPECT_EQ(read_error(short_text), short_text + ": byte 100: unexpected end of input (truncated file?)");

  auto empty = dir.write("empty.json", "");
  EXPECT_EQ(read_error(empty), empty + ": the file is empty");
  auto missing = (dir.path / "missing.json").string();
  EXPECT_EQ(read_error(missing), missing + ": cannot open: No such file or directory");
}

TEST(Kineto, DeepSeekProfile) {
  std::string file = PIPESIM_DEEPSEEK_TRACE;
  if (!std::filesystem::exists(file)) GTEST_SKIP() << file << " is missing";
  auto t = read_kineto(file);
  EXPECT_EQ(t.rank, 0);
  EXPECT_EQ(t.world_size, 64);
  EXPECT_EQ(t.device_name, "NVIDIA H800");
  EXPECT_EQ(t.device_sms, 132);
  EXPECT_EQ(t.bytes_read, static_cast<std::int64_t>(std::filesystem::file_size(file)));
  std::map<KinetoKind, int> count;
  std::set<std::int64_t> launches;
  for (auto& e : t.events) {
    ++count[e.kind];
    if (e.kind == KinetoKind::Runtime && e.correlation >= 0) launches.insert(e.correlation);
  }
  EXPECT_EQ(count[KinetoKind::Kernel], 963);
  EXPECT_EQ(count[KinetoKind::Memcpy], 8);
  EXPECT_EQ(count[KinetoKind::Memset], 12);
  EXPECT_EQ(count[KinetoKind::Annotation], 42);
  EXPECT_EQ(count[KinetoKind::CpuOp], 4387);
  EXPECT_EQ(count[KinetoKind::Runtime], 3853 + 40);  // cuda_runtime + cuda_driver
  for (auto& e : t.events)
    if (e.kind == KinetoKind::Kernel) {
      EXPECT_TRUE(launches.count(e.correlation)) << t.name_of(e.name);
    }
  expect_matches_reference(t, json::parse(slurp(file)));
}

}  // namespace
}  // namespace pipesim
