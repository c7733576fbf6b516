// Splitting the comma-separated lists users type ("1f1b,zb-h1", "F=1ms,I=1ms", "3,4,4,4").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pipesim {

// Every piece between separators, empty ones included ("a,,b" -> {"a", "", "b"}; "" -> {""}).
inline std::vector<std::string> split(std::string_view text, char separator = ',') {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto end = text.find(separator, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

}  // namespace pipesim
