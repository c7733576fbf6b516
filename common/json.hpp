// Reading JSON input field by field, so that every error names the source, the JSON path and the value
// ("llama.json: moe.experts_per_token: expected an integer, got \"8\""). Paths read "<source>: a.b[2].c";
// the root's path is the source alone, and a top-level array's elements are "<source>: [i]".
// Nothing from nlohmann escapes: malformed text, wrong types and out-of-range numbers are all pipesim::Error.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pipesim {

// Throws Error "<source>: not valid JSON (truncated?): <parser detail>"; a number too large for a double
// (1e400) is refused naming its path and its text.
nlohmann::json parse_json(std::string_view text, std::string_view source);

// A view of one JSON value and its path. It refers to `node`, which must outlive it.
class JsonReader {
 public:
  JsonReader(const nlohmann::json& node, std::string path);  // path: the source, e.g. a file name
  JsonReader(const nlohmann::json&& node, std::string path) = delete;  // would dangle

  const std::string& path() const { return path_; }
  const nlohmann::json& node() const { return *node_; }

  bool has(std::string_view key) const;             // requires an object
  JsonReader child(std::string_view key) const;     // required: "<path>.<key>: missing"
  std::vector<JsonReader> elements() const;         // requires an array; paths "<path>[i]"

  // This value as T: int, std::int64_t, double, bool, std::string, or a std::vector of those.
  // Integers must be whole and within T's range (3e9 is refused for int); numbers must be finite.
  template <class T>
  T get() const {
    T value{};
    read(value);
    return value;
  }
  template <class T>
  T required(std::string_view key) const {
    return child(key).get<T>();
  }
  template <class T>
  T optional(std::string_view key, T fallback) const {
    return has(key) ? child(key).get<T>() : fallback;
  }

  void expect_object() const;                                    // "<path>: expected an object, got ..."
  void only_keys(std::initializer_list<std::string_view> known) const;  // "<path>.<key>: unknown field (known: ...)"
  [[noreturn]] void fail(std::string_view message) const;        // throws Error("<path>: <message>")

 private:
  JsonReader(const nlohmann::json& node, std::string path, bool root);
  [[noreturn]] void fail_expected(std::string_view kind) const;  // "<path>: expected <kind>, got <value>"
  std::int64_t integer(std::int64_t lowest, std::int64_t highest) const;
  void read(int& out) const;
  void read(std::int64_t& out) const;
  void read(double& out) const;
  void read(bool& out) const;
  void read(std::string& out) const;
  template <class T>
  void read(std::vector<T>& out) const {
    for (const JsonReader& element : elements()) out.push_back(element.get<T>());
  }

  const nlohmann::json* node_;
  std::string path_;
  bool root_;  // children of the root are "<source>: key", deeper ones "<path>.key"
};

}  // namespace pipesim
