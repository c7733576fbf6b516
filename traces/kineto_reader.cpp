// Kineto trace reader: a hand-written validating JSON scanner over the whole text that keeps only the
// fields import needs (the file reader, plain or gzip, is kineto_file.cpp). Hand-written
// because nlohmann's SAX interface builds a std::string for every key and value (~40 MB/s); one rank's
// trace reaches gigabytes. tests/traces/kineto_reader_test.cpp checks it against nlohmann's DOM.
#include "traces/kineto_reader.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

// Bytes that end the fast scan of a string: the closing quote, an escape, a control character (invalid
// unescaped in JSON) or a non-ASCII byte (its UTF-8 sequence is checked on the slow path).
constexpr auto kStringStop = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 0x80; c < 256; ++c) t[static_cast<std::size_t>(c)] = true;
  t['"'] = t['\\'] = true;
  return t;
}();
constexpr std::size_t kMaxDepth = 1000;  // deeper nesting is refused rather than risked
constexpr std::int64_t kMaxTime = std::int64_t{1} << 62;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
int hex_digit(char c) {  // -1 if not one
  c = static_cast<char>(c | 0x20);  // lower case; digits are unchanged
  return is_digit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// A JSON value's raw text as errors show it: containers by kind, scalars by value (shortened).
std::string describe(std::string_view raw) {
  if (raw.front() == '{') return "an object";
  if (raw.front() == '[') return "an array";
  if (raw.size() > 40) return fmt::format("{}...", raw.substr(0, 40));
  return std::string(raw);
}

// JSON number text (already validated) in microseconds to integer ns. Plain decimals are converted
// exactly: the first three fractional digits are ns, the fourth rounds half away from zero and later
// ones are dropped; exponent forms go through double. False when out of range.
bool micros_to_ns(std::string_view t, std::int64_t& out) {
  if (t.find_first_of("eE") != std::string_view::npos) {
    double v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size()) return false;  // beyond a double's range (1e400)
    v *= 1000.0;
    if (!(std::fabs(v) < 9.2e18)) return false;
    out = std::llround(v);
    return true;
  }
  bool negative = t.front() == '-';
  std::size_t i = negative ? 1 : 0;
  std::int64_t whole = 0;
  for (; i < t.size() && is_digit(t[i]); ++i)
    if (__builtin_mul_overflow(whole, 10, &whole) || __builtin_add_overflow(whole, t[i] - '0', &whole)) return false;
  std::int64_t frac = 0;
  int digits = 0;
  bool round_up = false;
  for (++i; i < t.size(); ++i, ++digits) {  // after the '.', if any
    if (digits < 3) frac = frac * 10 + (t[i] - '0');
    else if (digits == 3) round_up = t[i] >= '5';
  }
  for (int k = digits; k < 3; ++k) frac *= 10;
  std::int64_t ns = 0;
  if (__builtin_mul_overflow(whole, 1000, &ns) || __builtin_add_overflow(ns, frac + (round_up ? 1 : 0), &ns))
    return false;
  out = negative ? -ns : ns;
  return true;
}

// An integer's JSON text; false for anything else (strings, fractions, exponents, out of range).
bool integer(std::string_view raw, std::int64_t& out) {
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), out);
  return ec == std::errc() && end == raw.data() + raw.size();
}

// The raw JSON values of one event's fields of interest ("" when absent), decided on once the whole
// object is read, since keys come in any order.
struct Fields {
  std::string_view ph, cat, name, pid, tid, ts, dur;
  std::string_view correlation, external_id, stream, device, input_dims, input_types;
};

class Reader {
 public:
  Reader(std::string_view text, const std::string& source, KinetoTrace& trace)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), source_(source), trace_(trace) {
    index_.emplace(names_.front(), 0);
  }

  void document() {
    if (end_ - p_ >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;  // a UTF-8 byte order mark
    ws();
    if (p_ == end_) throw Error(fmt::format("{}: the file is empty", source_));
    bool found = false;
    if (*p_ == '[') {
      events("");
      found = true;
    } else if (*p_ == '{') {
      object([&](std::string_view key) {
        if (key == "traceEvents") {
          if (peek() != '[') schema("traceEvents", "expected an array, got " + describe(value_text()));
          events("traceEvents");
          found = true;
        } else if (key == "distributedInfo" && peek() == '{') {
          object([&](std::string_view k) {
            if (k == "rank") trace_.rank = small_int(value_text(), "distributedInfo.rank");
            else if (k == "world_size") trace_.world_size = small_int(value_text(), "distributedInfo.world_size");
            else skip_value();
          });
        } else if (key == "deviceProperties" && peek() == '[') {
          array([&](std::size_t i) {
            if (i != 0 || peek() != '{') return skip_value();
            object([&](std::string_view k) {
              if (k == "name") trace_.device_name = string_field(value_text(), "deviceProperties[0].name");
              else if (k == "numSms") trace_.device_sms = small_int(value_text(), "deviceProperties[0].numSms");
              else skip_value();
            });
          });
        } else if (key == "baseTimeNanoseconds") {
          auto raw = value_text();
          if (!integer(raw, trace_.base_time_ns))
            schema("baseTimeNanoseconds", "expected an integer, got " + describe(raw));
        } else {
          skip_value();
        }
      });
    } else {
      auto raw = value_text();
      finish();
      throw Error(fmt::format("{}: not a Chrome/Kineto trace: the document is {}", source_, describe(raw)));
    }
    finish();
    if (!found) throw Error(fmt::format("{}: not a Chrome/Kineto trace: no traceEvents array", source_));
    if (seen_ == 0) throw Error(fmt::format("{}: the trace holds no events", source_));
    if (trace_.events.empty())
      throw Error(fmt::format("{}: the trace holds no kernel, memcpy, memset, CUDA runtime, annotation or CPU-op "
                              "events ({} events of other kinds)", source_, seen_));
    for (auto& e : trace_.events)
      if (__builtin_add_overflow(e.ts_ns, trace_.base_time_ns, &e.ts_ns) || e.ts_ns > kMaxTime || e.ts_ns < -kMaxTime)
        schema("baseTimeNanoseconds", "timestamps out of range once the base time is added");
    trace_.names.assign(std::make_move_iterator(names_.begin()), std::make_move_iterator(names_.end()));
  }

 private:
  // ---- errors ----
  [[noreturn]] void syntax(const char* at, std::string_view what) const {
    throw Error(fmt::format("{}: byte {}: {}", source_, at - begin_, what));
  }
  [[noreturn]] void truncated() const { syntax(end_, "unexpected end of input (truncated file?)"); }
  [[noreturn]] void schema(std::string_view path, std::string_view what) const {
    throw Error(fmt::format("{}: {}: {}", source_, path, what));
  }
  std::string shown(const char* at) const {
    auto c = static_cast<unsigned char>(*at);
    return c >= 0x20 && c < 0x7f ? fmt::format("'{}'", *at) : fmt::format("byte 0x{:02x}", c);
  }

  // ---- JSON syntax ----
  void ws() {
    while (p_ < end_ && is_ws(*p_)) ++p_;
  }
  char peek() const {
    if (p_ == end_) truncated();
    return *p_;
  }
  void expect(char c) {
    if (peek() != c) syntax(p_, fmt::format("expected '{}', got {}", c, shown(p_)));
    ++p_;
  }
  void finish() {
    ws();
    if (p_ != end_) syntax(p_, fmt::format("unexpected {} after the end of the JSON document", shown(p_)));
  }

  // p_ at the opening quote; returns the raw text between the quotes, and whether it holds escapes.
  std::string_view string(bool* escaped = nullptr) {
    const char* start = ++p_;
    if (escaped) *escaped = false;
    for (;;) {
      while (p_ < end_ && !kStringStop[static_cast<unsigned char>(*p_)]) ++p_;
      if (p_ == end_) truncated();
      char c = *p_;
      if (c == '"') return {start, static_cast<std::size_t>(p_++ - start)};
      if (c == '\\') {
        if (escaped) *escaped = true;
        escape();
      } else if (static_cast<unsigned char>(c) < 0x20) {
        syntax(p_, fmt::format("control character 0x{:02x} in a string (must be escaped)", c));
      } else {
        utf8();
      }
    }
  }
  unsigned hex4(const char* at) const {
    if (end_ - at < 4) truncated();
    unsigned u = 0;
    for (int i = 0; i < 4; ++i) {
      int d = hex_digit(at[i]);
      if (d < 0) syntax(at + i, "invalid \\u escape (four hex digits expected)");
      u = u * 16 + unsigned(d);
    }
    return u;
  }
  void escape() {  // p_ at the backslash
    if (end_ - p_ < 2) truncated();
    switch (p_[1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': p_ += 2; return;
      case 'u': break;
      default: syntax(p_, "invalid escape in a string");
    }
    unsigned u = hex4(p_ + 2);
    const char* at = p_;
    p_ += 6;
    if (u >= 0xDC00 && u <= 0xDFFF) syntax(at, "invalid \\u escape: a lone low surrogate");
    if (u >= 0xD800 && u <= 0xDBFF) {
      if (end_ - p_ < 2) truncated();
      if (p_[0] != '\\' || p_[1] != 'u') syntax(at, "invalid \\u escape: a high surrogate without its low half");
      unsigned low = hex4(p_ + 2);
      if (low < 0xDC00 || low > 0xDFFF) syntax(at, "invalid \\u escape: a high surrogate without its low half");
      p_ += 6;
    }
  }
  void utf8() {  // p_ at a byte >= 0x80: one well-formed UTF-8 sequence (no overlong forms, no surrogates)
    auto b = static_cast<unsigned char>(*p_);
    int n = (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : 0;
    if (n == 0) syntax(p_, "invalid UTF-8 in a string");
    if (end_ - p_ <= n) truncated();
    std::uint32_t cp = b & (0x3F >> n);
    for (int i = 1; i <= n; ++i) {
      auto c = static_cast<unsigned char>(p_[i]);
      if ((c & 0xC0) != 0x80) syntax(p_, "invalid UTF-8 in a string");
      cp = cp << 6 | (c & 0x3F);
    }
    constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) syntax(p_, "invalid UTF-8 in a string");
    p_ += n + 1;
  }
  void digits() {  // one or more
    if (!is_digit(peek())) syntax(p_, fmt::format("invalid number: expected a digit, got {}", shown(p_)));
    while (p_ < end_ && is_digit(*p_)) ++p_;
  }
  void number() {  // p_ at '-' or a digit; JSON forbids leading zeros, "1.", ".5" and "+1"
    if (*p_ == '-') ++p_;
    if (peek() == '0') ++p_;
    else digits();
    if (p_ < end_ && *p_ == '.') { ++p_; digits(); }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (peek() == '+' || *p_ == '-') ++p_;
      digits();
    }
  }
  void literal(std::string_view word) {
    for (char c : word) {
      if (peek() != c) syntax(p_, fmt::format("invalid literal: expected '{}', got {}", word, shown(p_)));
      ++p_;
    }
  }
  void key_colon() {
    if (peek() != '"') syntax(p_, fmt::format("expected a string key, got {}", shown(p_)));
    string();
    ws();
    expect(':');
    ws();
  }
  // Skips one value (p_ at its first byte), validating it; iterative, so nesting costs no stack.
  void skip_value() {
    stack_.clear();
    for (;;) {
      char c = peek();
      if (c == '{' || c == '[') {
        ++p_;
        ws();
        if (peek() != (c == '{' ? '}' : ']')) {
          if (stack_.size() == kMaxDepth) syntax(p_, fmt::format("nesting deeper than {} levels", kMaxDepth));
          stack_.push_back(c == '{' ? '}' : ']');
          if (c == '{') key_colon();
          continue;
        }
        ++p_;
      } else if (c == '"') {
        string();
      } else if (c == '-' || is_digit(c)) {
        number();
      } else if (c == 't' || c == 'f' || c == 'n') {
        literal(c == 't' ? "true" : c == 'f' ? "false" : "null");
      } else {
        syntax(p_, fmt::format("expected a JSON value, got {}", shown(p_)));
      }
      for (;;) {  // after a value: close containers, or step to the next element
        if (stack_.empty()) return;
        ws();
        c = peek();
        if (c == stack_.back()) {
          ++p_;
          stack_.pop_back();
          continue;
        }
        if (c != ',') syntax(p_, fmt::format("expected ',' or '{}', got {}", stack_.back(), shown(p_)));
        ++p_;
        ws();
        if (stack_.back() == '}') key_colon();
        break;
      }
    }
  }
  std::string_view value_text() {
    ws();
    const char* start = p_;
    skip_value();
    return {start, static_cast<std::size_t>(p_ - start)};
  }
  // Calls on_key(key) for each member, p_ at the member's value, which on_key must consume.
  template <class F>
  void object(F&& on_key) {
    ++p_;
    ws();
    if (peek() == '}') return void(++p_);
    std::string decoded;
    for (;;) {
      if (peek() != '"') syntax(p_, fmt::format("expected a string key, got {}", shown(p_)));
      bool escaped;
      auto key = string(&escaped);
      if (escaped) key = decode(key, decoded);
      ws();
      expect(':');
      ws();
      on_key(key);
      ws();
      char c = peek();
      ++p_;
      if (c == '}') return;
      if (c != ',') syntax(p_ - 1, fmt::format("expected ',' or '}}', got {}", shown(p_ - 1)));
      ws();
    }
  }
  template <class F>
  void array(F&& on_element) {
    ++p_;
    ws();
    if (peek() == ']') return void(++p_);
    for (std::size_t i = 0;; ++i) {
      on_element(i);
      ws();
      char c = peek();
      ++p_;
      if (c == ']') return;
      if (c != ',') syntax(p_ - 1, fmt::format("expected ',' or ']', got {}", shown(p_ - 1)));
      ws();
    }
  }

  // ---- values ----
  // The content of a validated string's raw text (between the quotes) with escapes resolved, in `out`.
  static std::string_view decode(std::string_view raw, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        out += raw[i];
        continue;
      }
      char c = raw[++i];
      if (c != 'u') {
        out += c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
        continue;
      }
      auto hex = [&](std::size_t at) {
        std::uint32_t u = 0;
        for (std::size_t k = at; k < at + 4; ++k) u = u * 16 + std::uint32_t(hex_digit(raw[k]));
        return u;
      };
      std::uint32_t cp = hex(i + 1);
      i += 4;
      if (cp >= 0xD800 && cp <= 0xDBFF) {  // validated: the low half follows
        cp = 0x10000 + ((cp - 0xD800) << 10) + (hex(i + 3) - 0xDC00);
        i += 6;
      }
      // UTF-8: a lead byte carrying the top bits, then 6 bits per continuation byte.
      int more = cp < 0x80 ? 0 : cp < 0x800 ? 1 : cp < 0x10000 ? 2 : 3;
      constexpr unsigned kLead[] = {0x00, 0xC0, 0xE0, 0xF0};
      out += static_cast<char>(kLead[more] | cp >> (6 * more));
      for (int k = more - 1; k >= 0; --k) out += static_cast<char>(0x80 | (cp >> (6 * k) & 0x3F));
    }
    return out;
  }
  // A string value's content (decoded into `buf` only when it holds escapes); nullopt for other types.
  static std::optional<std::string_view> text_of(std::string_view raw, std::string& buf) {
    if (raw.empty() || raw.front() != '"') return std::nullopt;
    raw = raw.substr(1, raw.size() - 2);
    if (raw.find('\\') == std::string_view::npos) return raw;
    return decode(raw, buf);
  }
  std::string string_field(std::string_view raw, std::string_view path) {
    auto s = text_of(raw, scratch_);
    if (!s) schema(path, "expected a string, got " + describe(raw));
    return std::string(*s);
  }
  int small_int(std::string_view raw, std::string_view path) const {
    std::int64_t v = 0;
    if (!integer(raw, v)) schema(path, "expected an integer, got " + describe(raw));
    if (v < INT32_MIN || v > INT32_MAX) schema(path, fmt::format("{} is out of range", v));
    return static_cast<int>(v);
  }
  std::uint32_t intern(std::string_view s) {
    if (s.empty()) return 0;
    if (auto it = index_.find(s); it != index_.end()) return it->second;
    auto i = static_cast<std::uint32_t>(names_.size());
    index_.emplace(names_.emplace_back(s), i);  // a deque never moves its strings, so the view stays valid
    return i;
  }

  // ---- events ----
  void events(std::string_view prefix) {
    array([&](std::size_t i) {
      if (peek() != '{') {
        auto raw = value_text();
        schema(fmt::format("{}[{}]", prefix, i), "expected an event object, got " + describe(raw));
      }
      event(prefix, i);
    });
  }
  void args(Fields& f) {
    object([&](std::string_view key) {
      if (key == "correlation") f.correlation = value_text();
      else if (key == "External id" || key == "external id") f.external_id = value_text();
      else if (key == "stream") f.stream = value_text();
      else if (key == "device") f.device = value_text();
      else if (key == "Input Dims") f.input_dims = value_text();
      else if (key == "Input type") f.input_types = value_text();
      else skip_value();
    });
  }
  void event(std::string_view prefix, std::size_t index) {
    prefix_ = prefix;
    event_index_ = index;
    Fields f;
    object([&](std::string_view key) {
      switch (key.size()) {
        case 2:
          if (key == "ph") return void(f.ph = value_text());
          if (key == "ts") return void(f.ts = value_text());
          break;
        case 3:
          if (key == "cat") return void(f.cat = value_text());
          if (key == "dur") return void(f.dur = value_text());
          if (key == "pid") return void(f.pid = value_text());
          if (key == "tid") return void(f.tid = value_text());
          break;
        case 4:
          if (key == "name") return void(f.name = value_text());
          if (key == "args" && peek() == '{') return args(f);
          break;
      }
      skip_value();
    });
    ++seen_;
    auto ph = text_of(f.ph, scratch_);
    if (!ph || *ph != "X") return;
    auto cat = text_of(f.cat, scratch_);
    if (!cat) return;
    KinetoKind kind;
    if (*cat == "kernel") kind = KinetoKind::Kernel;
    else if (*cat == "cuda_runtime" || *cat == "cuda_driver") kind = KinetoKind::Runtime;
    else if (*cat == "cpu_op") kind = KinetoKind::CpuOp;
    else if (*cat == "gpu_memcpy") kind = KinetoKind::Memcpy;
    else if (*cat == "gpu_memset") kind = KinetoKind::Memset;
    else if (*cat == "user_annotation") kind = KinetoKind::Annotation;
    else return;
    keep(kind, f);
  }
  // The JSON path of the current event's `field` (".ts", ".args.stream"; "" for the event itself).
  std::string path(std::string_view field) const { return fmt::format("{}[{}]{}", prefix_, event_index_, field); }
  void keep(KinetoKind kind, const Fields& f) {
    KinetoEvent e;
    e.kind = kind;
    e.ts_ns = micros(f.ts, ".ts");
    e.dur_ns = micros(f.dur, ".dur");
    if (e.dur_ns < 0) schema(path(".dur"), fmt::format("negative duration {}", f.dur));
    // Times within ±2^62 ns (±146 years) leave room for every sum and difference import makes.
    if (e.ts_ns > kMaxTime || e.ts_ns < -kMaxTime) schema(path(".ts"), fmt::format("{} us is out of range", f.ts));
    if (e.dur_ns > kMaxTime) schema(path(".dur"), fmt::format("{} us is out of range", f.dur));
    if (!f.name.empty()) {
      auto name = text_of(f.name, scratch_);
      if (!name) schema(path(".name"), "expected a string, got " + describe(f.name));
      e.name = intern(*name);
    }
    thread_.clear();
    thread_part(f.pid, ".pid");
    thread_ += '/';
    thread_part(f.tid, ".tid");
    e.thread = intern(thread_);
    e.correlation = arg(f.correlation, ".args.correlation");
    e.external_id = arg(f.external_id, ".args[\"External id\"]");
    e.stream = static_cast<int>(arg(f.stream, ".args.stream", INT32_MAX));
    e.device = static_cast<int>(arg(f.device, ".args.device", INT32_MAX));
    e.input_dims = intern(f.input_dims);
    e.input_types = intern(f.input_types);
    trace_.events.push_back(e);
  }
  std::int64_t micros(std::string_view raw, std::string_view field) const {
    if (raw.empty()) schema(path(""), fmt::format("a complete event without \"{}\"", field.substr(1)));
    if (raw.front() != '-' && !is_digit(raw.front())) schema(path(field), "expected a number, got " + describe(raw));
    std::int64_t ns = 0;
    if (!micros_to_ns(raw, ns)) schema(path(field), fmt::format("{} us is out of range", raw));
    return ns;
  }
  std::int64_t arg(std::string_view raw, std::string_view field, std::int64_t max = INT64_MAX) const {
    if (raw.empty() || raw == "null") return -1;
    std::int64_t v = 0;
    if (!integer(raw, v)) schema(path(field), "expected an integer, got " + describe(raw));
    if (v < -1 || v > max) schema(path(field), fmt::format("{} is out of range", v));
    return v;
  }
  // pid and tid: Kineto writes numbers for processes and threads, strings for its own rows ("Traces").
  void thread_part(std::string_view raw, std::string_view field) {
    if (raw.empty()) return;
    if (raw.front() == '-' || is_digit(raw.front())) return void(thread_ += raw);
    auto s = text_of(raw, scratch_);
    if (!s) schema(path(field), "expected a number or a string, got " + describe(raw));
    thread_ += *s;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  const std::string& source_;
  KinetoTrace& trace_;
  std::deque<std::string> names_{""};
  std::unordered_map<std::string_view, std::uint32_t> index_;
  std::vector<char> stack_;   // skip_value's open containers
  std::string thread_, scratch_;
  std::size_t seen_ = 0;      // events of any kind
  std::string_view prefix_;   // the current event's path: prefix_[event_index_]
  std::size_t event_index_ = 0;
};

}  // namespace

KinetoTrace parse_kineto(std::string_view text, const std::string& source) {
  KinetoTrace trace;
  trace.source = source;
  trace.bytes_read = static_cast<std::int64_t>(text.size());
  Reader(text, source, trace).document();
  return trace;
}

}  // namespace pipesim
