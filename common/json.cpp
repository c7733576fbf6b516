// JSON input with errors that name the path and the value (see json.hpp).
#include "common/json.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

using Json = nlohmann::json;

// Follows a parse as SAX events, to say where it stopped: the path of the value being read.
class WhereParseStopped : public nlohmann::json_sax<Json> {
 public:
  std::string path() const {
    std::string out;
    for (auto& f : frames_)
      out += f.array ? fmt::format("[{}]", f.index) : (out.empty() ? f.key : "." + f.key);
    return out;
  }
  const std::string& token() const { return token_; }

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    frames_.back().key = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string& last_token, const nlohmann::detail::exception&) override {
    token_ = last_token;
    return false;
  }

 private:
  struct Frame {
    bool array;
    std::size_t index = 0;  // of the element being read
    std::string key;        // of the member being read
  };
  bool value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  bool open(bool array) {
    frames_.push_back({array, 0, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return value();
  }
  std::vector<Frame> frames_;
  std::string token_;
};

// A value as messages show it: short, and non-finite numbers by name (dump() would print null).
std::string shown(const Json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) return fmt::format("{}", v.get<double>());
  std::string text = v.dump();
  constexpr std::size_t kLongest = 80;
  if (text.size() > kLongest) text = text.substr(0, kLongest - 3) + "...";
  return text;
}

}  // namespace

Json parse_json(std::string_view text, std::string_view source) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::out_of_range& e) {
    if (e.id != 406) throw Error(fmt::format("{}: not valid JSON (truncated?): {}", source, e.what()));
    // A number beyond a double's range (1e400): the parser knows the text, not where it was.
    WhereParseStopped where;
    Json::sax_parse(text.begin(), text.end(), &where);
    std::string path = where.path();
    throw Error(fmt::format("{}{}{}: number out of range, got {}", source, path.empty() ? "" : ": ", path,
                            where.token()));
  } catch (const Json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON (truncated?): {}", source, e.what()));
  }
}

JsonReader::JsonReader(const Json& node, std::string path) : JsonReader(node, std::move(path), true) {}

JsonReader::JsonReader(const Json& node, std::string path, bool root)
    : node_(&node), path_(std::move(path)), root_(root) {}

void JsonReader::fail(std::string_view message) const { throw Error(fmt::format("{}: {}", path_, message)); }

void JsonReader::fail_expected(std::string_view kind) const {
  fail(fmt::format("expected {}, got {}", kind, shown(*node_)));
}

void JsonReader::expect_object() const {
  if (!node_->is_object()) fail_expected("an object");
}

bool JsonReader::has(std::string_view key) const {
  expect_object();
  return node_->contains(key);
}

JsonReader JsonReader::child(std::string_view key) const {
  expect_object();
  auto path = root_ ? fmt::format("{}: {}", path_, key) : fmt::format("{}.{}", path_, key);
  auto it = node_->find(key);
  if (it == node_->end()) throw Error(path + ": missing");
  return JsonReader(*it, std::move(path), false);
}

std::vector<JsonReader> JsonReader::elements() const {
  if (!node_->is_array()) fail_expected("an array");
  std::vector<JsonReader> out;
  out.reserve(node_->size());
  for (std::size_t i = 0; i < node_->size(); ++i)
    out.push_back(JsonReader((*node_)[i], fmt::format("{}{}[{}]", path_, root_ ? ": " : "", i), false));
  return out;
}

void JsonReader::only_keys(std::initializer_list<std::string_view> known) const {
  expect_object();
  for (auto& [key, value] : node_->items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      child(key).fail(fmt::format("unknown field (known: {})", fmt::join(known, ", ")));
}

// Whole numbers in [lowest, highest], written as integers or as floats with no fraction (3e9).
std::int64_t JsonReader::integer(std::int64_t lowest, std::int64_t highest) const {
  const Json& v = *node_;
  auto out_of_range = [&] { fail(fmt::format("expected an integer in {}..{}, got {}", lowest, highest, shown(v))); };
  if (v.is_number_unsigned()) {
    if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(highest)) out_of_range();
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  }
  if (v.is_number_integer()) {
    auto n = v.get<std::int64_t>();
    if (n < lowest || n > highest) out_of_range();
    return n;
  }
  if (!v.is_number_float()) fail_expected("an integer");
  double d = v.get<double>();
  if (!std::isfinite(d) || d != std::trunc(d)) fail_expected("an integer");
  // highest + 1 is a power of two for int and int64, so the bound is exact in a double.
  if (d < static_cast<double>(lowest) || d >= static_cast<double>(highest) + 1.0) out_of_range();
  return static_cast<std::int64_t>(d);
}

void JsonReader::read(int& out) const {
  out = static_cast<int>(integer(std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

void JsonReader::read(std::int64_t& out) const {
  out = integer(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max());
}

void JsonReader::read(double& out) const {
  if (!node_->is_number()) fail_expected("a number");
  out = node_->get<double>();
  if (!std::isfinite(out)) fail_expected("a finite number");
}

void JsonReader::read(bool& out) const {
  if (!node_->is_boolean()) fail_expected("true or false");
  out = node_->get<bool>();
}

void JsonReader::read(std::string& out) const {
  if (!node_->is_string()) fail_expected("a string");
  out = node_->get<std::string>();
}

}  // namespace pipesim
