// Streaming Kineto reader: nlohmann's SAX interface drives a small state machine over the document, so
// memory holds the kept events, never a DOM (see kineto_reader.hpp).
#include "traces/kineto_reader.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

enum class Ctx : std::uint8_t { Top, Events, Event, Args, Dist, Devices, Device, Skip, Capture };

// "1740461679471346.123" microseconds -> ns, exactly (rounded half up past the ns digit); exponent forms
// go through a double.
std::optional<std::int64_t> micros_to_ns(const std::string& text) {
  if (text.find_first_of("eE") != std::string::npos) {
    double v = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(v) || std::fabs(v) > 9e15) return std::nullopt;
    return std::llround(v * 1e3);
  }
  std::size_t i = 0;
  bool negative = !text.empty() && text[0] == '-';
  if (negative) ++i;
  std::int64_t whole = 0;
  for (; i < text.size() && text[i] != '.'; ++i) {
    if (whole > INT64_MAX / 10'000) return std::nullopt;  // whole * 10 * 1000 must fit
    whole = whole * 10 + (text[i] - '0');
  }
  std::int64_t frac = 0;
  int digits = 0;
  bool round_up = false;
  if (i < text.size()) {
    for (++i; i < text.size(); ++i, ++digits) {
      if (digits < 3) frac = frac * 10 + (text[i] - '0');
      else if (digits == 3) round_up = text[i] >= '5';
    }
  }
  for (; digits < 3; ++digits) frac *= 10;
  std::int64_t ns = whole * 1000 + frac + (round_up ? 1 : 0);
  return negative ? -ns : ns;
}

class Handler : public nlohmann::json::json_sax_t {
 public:
  Handler(KinetoTrace& out) : out_(out) {}

  bool null() override { return value("null", nullptr, nullptr); }
  bool boolean(bool b) override { return value(b ? "true" : "false", nullptr, nullptr); }
  bool number_integer(number_integer_t v) override {
    auto text = std::to_string(v);
    return value(text, &v, &text);
  }
  bool number_unsigned(number_unsigned_t v) override {
    auto text = std::to_string(v);
    if (v > static_cast<number_unsigned_t>(INT64_MAX)) return value(text, nullptr, &text);
    auto i = static_cast<std::int64_t>(v);
    return value(text, &i, &text);
  }
  bool number_float(number_float_t, const string_t& raw) override { return value(raw, nullptr, &raw); }
  bool string(string_t& s) override {
    if (ctx_.back() == Ctx::Capture) {
      capture_ += nlohmann::json(s).dump();
      return true;
    }
    return value_string(s);
  }
  bool binary(binary_t&) override { return true; }

  bool start_object(std::size_t) override { return open(true); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    if (ctx_.back() == Ctx::Capture) {
      capture_ += nlohmann::json(k).dump() + ":";
      need_comma_ = false;
      return true;
    }
    key_ = k;
    return true;
  }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    auto at = what.find("syntax error");
    bool truncated = token.empty() || what.find("unexpected end of input") != std::string::npos;
    throw Error(fmt::format("{}: byte {}: {}{}", out_.source, position, at != std::string::npos ? what.substr(at) : what,
                            truncated ? " (truncated file?)" : ""));
  }

  void finish() {
    if (!saw_events_) throw Error(fmt::format("{}: not a Chrome/Kineto trace: no traceEvents array", out_.source));
    if (event_index_ == 0) throw Error(fmt::format("{}: the trace holds no events", out_.source));
  }

 private:
  struct Event {
    std::string ph, cat, name, pid, tid, input_dims;
    std::optional<std::int64_t> ts, dur;
    std::int64_t correlation = -1, external_id = -1;
    int stream = -1, device = -1;
  };

  std::string path() const { return fmt::format("{}: traceEvents[{}].{}", out_.source, event_index_, key_); }
  std::string args_path() const { return fmt::format("{}: traceEvents[{}].args.{}", out_.source, event_index_, key_); }

  std::uint32_t intern(const std::string& s) {
    auto [it, fresh] = interned_.try_emplace(s, static_cast<std::uint32_t>(out_.names.size()));
    if (fresh) out_.names.push_back(s);
    return it->second;
  }

  void capture_token(const std::string& text) {
    if (need_comma_) capture_ += ",";
    capture_ += text;
    need_comma_ = true;
  }

  bool open(bool object) {
    auto top = ctx_.back();
    if (top == Ctx::Capture || top == Ctx::Skip) {
      if (top == Ctx::Capture) {
        if (need_comma_) capture_ += ",";
        capture_ += object ? "{" : "[";
        need_comma_ = false;
      }
      ++nested_;
      return true;
    }
    Ctx next = Ctx::Skip;
    switch (top) {
      case Ctx::Top:
        if (depth_ == 0) {
          // The root: an object with traceEvents, or a bare array of events.
          ++depth_;
          if (object) return ctx_.push_back(Ctx::Top), true;
          saw_events_ = true;
          ctx_.push_back(Ctx::Events);
          return true;
        }
        if (key_ == "traceEvents") {
          if (object) throw Error(fmt::format("{}: traceEvents: expected an array of events, got an object", out_.source));
          saw_events_ = true;
          next = Ctx::Events;
        } else if (key_ == "distributedInfo" && object) next = Ctx::Dist;
        else if (key_ == "deviceProperties" && !object) next = Ctx::Devices;
        break;
      case Ctx::Events:
        if (!object) throw Error(fmt::format("{}: traceEvents[{}]: expected an event object, got an array", out_.source, event_index_));
        event_ = Event{};
        key_.clear();
        next = Ctx::Event;
        break;
      case Ctx::Event:
        if (key_ == "args" && object) next = Ctx::Args;
        break;
      case Ctx::Args:
        break;
      case Ctx::Devices:
        next = devices_seen_++ == 0 && object ? Ctx::Device : Ctx::Skip;
        break;
      default:
        break;
    }
    if (next == Ctx::Skip) nested_ = 1;
    ctx_.push_back(next);
    return true;
  }

  bool close() {
    auto top = ctx_.back();
    if (top == Ctx::Skip || top == Ctx::Capture) {
      if (top == Ctx::Capture) {
        capture_ += capture_.front() == '{' && nested_ == 1 ? "}" : "";
        need_comma_ = true;
      }
      if (--nested_ > 0) {
        if (top == Ctx::Capture) capture_ += "]";  // inner arrays (Input Dims are lists of lists)
        return true;
      }
      if (top == Ctx::Capture) {
        if (capture_.front() == '[') capture_ += "]";
        event_.input_dims = capture_;
      }
      ctx_.pop_back();
      return true;
    }
    if (top == Ctx::Event) finish_event();
    ctx_.pop_back();
    return true;
  }

  void finish_event() {
    auto index = event_index_++;
    if (event_.ph != "X") return;
    KinetoKind kind;
    auto& c = event_.cat;
    if (c == "kernel") kind = KinetoKind::Kernel;
    else if (c == "gpu_memcpy") kind = KinetoKind::Memcpy;
    else if (c == "gpu_memset") kind = KinetoKind::Memset;
    else if (c == "cuda_runtime" || c == "cuda_driver") kind = KinetoKind::Runtime;
    else if (c == "user_annotation") kind = KinetoKind::Annotation;
    else if (c == "cpu_op") kind = KinetoKind::CpuOp;
    else return;
    for (auto [field, v] : {std::pair{"ts", &event_.ts}, std::pair{"dur", &event_.dur}})
      if (!*v) throw Error(fmt::format("{}: traceEvents[{}]: a complete (\"X\") {} event without \"{}\"", out_.source, index, c, field));
    if (*event_.dur < 0)
      throw Error(fmt::format("{}: traceEvents[{}].dur: negative duration {} ns", out_.source, index, *event_.dur));
    KinetoEvent e;
    e.kind = kind;
    e.name = intern(event_.name);
    e.thread = intern(event_.pid + "/" + event_.tid);
    e.ts_ns = *event_.ts + out_.base_time_ns;
    e.dur_ns = *event_.dur;
    e.correlation = event_.correlation;
    e.external_id = event_.external_id;
    e.stream = event_.stream;
    e.device = event_.device;
    if (!event_.input_dims.empty()) e.input_dims = intern(event_.input_dims);
    out_.events.push_back(e);
  }

  // A scalar: `integer` when it is an integer, `raw` for numbers' text.
  bool value(const std::string& text, const std::int64_t* integer, const std::string* raw) {
    switch (ctx_.back()) {
      case Ctx::Capture: capture_token(text); return true;
      case Ctx::Top:
        if (key_ == "baseTimeNanoseconds" && integer) out_.base_time_ns = *integer;
        if (key_ == "traceEvents") throw Error(fmt::format("{}: traceEvents: expected an array of events, got {}", out_.source, text));
        return true;
      case Ctx::Dist:
        if (integer && key_ == "rank") out_.rank = static_cast<int>(*integer);
        if (integer && key_ == "world_size") out_.world_size = static_cast<int>(*integer);
        return true;
      case Ctx::Device:
        if (integer && key_ == "numSms") out_.device_sms = static_cast<int>(*integer);
        return true;
      case Ctx::Event:
        if (key_ == "ts" || key_ == "dur") {
          if (!raw) throw Error(fmt::format("{}: expected a number (microseconds), got {}", path(), text));
          auto ns = micros_to_ns(*raw);
          if (!ns) throw Error(fmt::format("{}: {} microseconds is out of range", path(), *raw));
          (key_ == "ts" ? event_.ts : event_.dur) = *ns;
        } else if (key_ == "pid" || key_ == "tid") {
          (key_ == "pid" ? event_.pid : event_.tid) = text;
        } else if (key_ == "ph" || key_ == "cat" || key_ == "name") {
          throw Error(fmt::format("{}: expected a string, got {}", path(), text));
        }
        return true;
      case Ctx::Args:
        if (key_ == "correlation" || key_ == "External id" || key_ == "stream" || key_ == "device") {
          if (!integer) throw Error(fmt::format("{}: expected an integer, got {}", args_path(), text));
          if (key_ == "correlation") event_.correlation = *integer;
          else if (key_ == "External id") event_.external_id = *integer;
          else if (key_ == "stream") event_.stream = static_cast<int>(*integer);
          else event_.device = static_cast<int>(*integer);
        }
        return true;
      case Ctx::Events:
        throw Error(fmt::format("{}: traceEvents[{}]: expected an event object, got {}", out_.source, event_index_++, text));
      default: return true;
    }
  }

  bool value_string(const std::string& s) {
    switch (ctx_.back()) {
      case Ctx::Event:
        if (key_ == "ph") event_.ph = s;
        else if (key_ == "cat") event_.cat = s;
        else if (key_ == "name") event_.name = s;
        else if (key_ == "pid") event_.pid = s;
        else if (key_ == "tid") event_.tid = s;
        else if (key_ == "ts" || key_ == "dur")
          throw Error(fmt::format("{}: expected a number (microseconds), got \"{}\"", path(), s));
        return true;
      case Ctx::Device:
        if (key_ == "name") out_.device_name = s;
        return true;
      case Ctx::Top:
        if (key_ == "traceEvents") throw Error(fmt::format("{}: traceEvents: expected an array of events, got \"{}\"", out_.source, s));
        return true;
      case Ctx::Events:
        throw Error(fmt::format("{}: traceEvents[{}]: expected an event object, got \"{}\"", out_.source, event_index_++, s));
      default: return true;
    }
  }

  KinetoTrace& out_;
  std::vector<Ctx> ctx_{Ctx::Top};
  int depth_ = 0;
  int nested_ = 0;
  std::string key_;
  Event event_;
  std::size_t event_index_ = 0;
  int devices_seen_ = 0;
  bool saw_events_ = false;
  std::string capture_;
  bool need_comma_ = false;
  std::unordered_map<std::string, std::uint32_t> interned_{{"", 0}};
};

std::string gunzip(const std::string& data, const std::string& source) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(fmt::format("{}: cannot start gzip decompression", source));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buffer[1 << 16];
  int rc = Z_OK;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof buffer;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      auto at = zs.total_in;
      inflateEnd(&zs);
      throw Error(fmt::format("{}: gzip data is corrupt or truncated at byte {}", source, at));
    }
    out.append(buffer, sizeof buffer - zs.avail_out);
  } while (rc != Z_STREAM_END && (zs.avail_in > 0 || zs.avail_out == 0));
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) throw Error(fmt::format("{}: gzip data is truncated at byte {}", source, data.size()));
  return out;
}

}  // namespace

KinetoTrace parse_kineto(std::string_view text, const std::string& source) {
  KinetoTrace trace;
  trace.source = source;
  trace.bytes_read = static_cast<std::int64_t>(text.size());
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    throw Error(fmt::format("{}: the file is empty", source));
  Handler handler(trace);
  nlohmann::json::sax_parse(text.begin(), text.end(), &handler);
  handler.finish();
  return trace;
}

KinetoTrace read_kineto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open trace '{}' for reading", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f && static_cast<unsigned char>(data[1]) == 0x8b)
    data = gunzip(data, path);
  return parse_kineto(data, path);
}

}  // namespace pipesim
