// CSV reports (see report_csv.hpp).
#include "cli/report_csv.hpp"

#include <fmt/format.h>

namespace pipesim::cli {

// A row's value as text: booleans yes/no, floats to 6 significant digits, strings as they are.
std::string cell_text(const nlohmann::ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) return fmt::format("{:.6g}", v.get<double>());
  return v.dump();
}

std::string rows_csv(const std::vector<nlohmann::ordered_json>& rows, const std::vector<std::string>& columns) {
  std::string out = fmt::format("{}\n", fmt::join(columns, ","));
  for (auto& r : rows) {
    std::vector<std::string> cells;
    for (auto& c : columns) {
      auto text = r.contains(c) ? cell_text(r[c]) : "";
      if (text.find_first_of(",\"\n") != std::string::npos) {
        std::string quoted = "\"";
        for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        text = quoted + "\"";
      }
      cells.push_back(text);
    }
    out += fmt::format("{}\n", fmt::join(cells, ","));
  }
  return out;
}

}  // namespace pipesim::cli
