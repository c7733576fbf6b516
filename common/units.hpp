// Quantities with units, as users type them: durations (`1.2ms`, `20us`, `350ns`, `2s`), sizes
// (`64MiB`, `1.5GB`, `4096B`) and bandwidths (`50GB/s`, `400Gb/s`, `25GiB/s`). A bare number is refused:
// every error names the field (a flag or a JSON path) and the value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pipesim {

// The longest single action or transfer pipesim simulates: 1e6 s (about 11.6 days). Longer inputs are refused
// at the boundary, so no sum of them can leave 64-bit nanoseconds unnoticed (the engine checks its sums too).
inline constexpr std::int64_t kMaxActionNs = 1'000'000'000'000'000;

// Refuses a duration above kMaxActionNs, naming `field`.
std::int64_t parse_duration_ns(std::string_view text, std::string_view field);
std::int64_t parse_bytes(std::string_view text, std::string_view field);
double parse_bandwidth_bytes_per_ns(std::string_view text, std::string_view field);  // 1 GB/s = 1 byte/ns

std::string format_duration(std::int64_t ns);  // "1.234 ms", for tables

}  // namespace pipesim
