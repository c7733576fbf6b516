// CSV reports: rows of named values (a sweep's points), one line per row, RFC 4180 quoting.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pipesim::cli {

// A value as a cell: booleans yes/no, floats to 6 significant digits, strings as they are, null empty.
std::string cell_text(const nlohmann::ordered_json& value);
// A header of `columns`, then each row's values in that order (missing: empty).
std::string rows_csv(const std::vector<nlohmann::ordered_json>& rows, const std::vector<std::string>& columns);

}  // namespace pipesim::cli
