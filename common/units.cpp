// Unit parsing (see units.hpp). Decimal prefixes are powers of 1000, binary ones (KiB, MiB, GiB) of 1024;
// `b` (bits) in a bandwidth divides by 8.
#include "common/units.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {
namespace {

// Splits "1.5ms" into 1.5 and "ms"; refuses text without a number in front.
std::pair<double, std::string_view> split(std::string_view text, std::string_view field, std::string_view units) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !std::isfinite(value))
    throw Error(fmt::format("{}: '{}' is not a number with a unit ({})", field, text, units));
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (value < 0) throw Error(fmt::format("{}: '{}' is negative", field, text));
  return {value, unit};
}

template <std::size_t N>
double scale(std::string_view text, std::string_view field, std::string_view units,
             const std::array<std::pair<std::string_view, double>, N>& table, double& value) {
  auto [number, unit] = split(text, field, units);
  value = number;
  if (unit.empty())
    throw Error(fmt::format("{}: '{}' needs a unit ({}); a bare number is ambiguous", field, text, units));
  for (auto& [name, factor] : table)
    if (unit == name) return factor;
  throw Error(fmt::format("{}: unknown unit '{}' in '{}' (use {})", field, unit, text, units));
}

std::int64_t to_int(double v, std::string_view text, std::string_view field) {
  if (v > 9.0e18) throw Error(fmt::format("{}: '{}' is too large", field, text));
  return static_cast<std::int64_t>(std::llround(v));
}

}  // namespace

std::int64_t parse_duration_ns(std::string_view text, std::string_view field) {
  static constexpr std::array<std::pair<std::string_view, double>, 4> units{
      {{"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}}};
  double value = 0;
  double factor = scale(text, field, "ns, us, ms, s", units, value);
  if (value * factor > static_cast<double>(kMaxActionNs))
    throw Error(fmt::format("{}: '{}' is longer than 1e6 s (11.6 days), the longest action pipesim simulates", field, text));
  return to_int(value * factor, text, field);
}

std::int64_t parse_bytes(std::string_view text, std::string_view field) {
  static constexpr std::array<std::pair<std::string_view, double>, 9> units{
      {{"B", 1.0}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"KiB", 1024.0}, {"MiB", 1048576.0},
       {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}}};
  double value = 0;
  double factor = scale(text, field, "B, KB, MB, GB, KiB, MiB, GiB", units, value);
  return to_int(value * factor, text, field);
}

double parse_bandwidth_bytes_per_ns(std::string_view text, std::string_view field) {
  static constexpr std::array<std::pair<std::string_view, double>, 8> units{
      {{"GB/s", 1.0}, {"MB/s", 1e-3}, {"TB/s", 1e3}, {"GiB/s", 1.073741824}, {"MiB/s", 1.048576e-3},
       {"Gb/s", 0.125}, {"Mb/s", 0.125e-3}, {"Tb/s", 125.0}}};
  double value = 0;
  double factor = scale(text, field, "GB/s, MB/s, GiB/s, Gb/s", units, value);
  if (value == 0) throw Error(fmt::format("{}: bandwidth '{}' must be positive", field, text));
  return value * factor;
}

std::string format_duration(std::int64_t ns) {
  if (ns >= 1'000'000'000) return fmt::format("{:.3f} s", static_cast<double>(ns) / 1e9);
  if (ns >= 1'000'000) return fmt::format("{:.3f} ms", static_cast<double>(ns) / 1e6);
  if (ns >= 1'000) return fmt::format("{:.3f} us", static_cast<double>(ns) / 1e3);
  return fmt::format("{} ns", ns);
}

}  // namespace pipesim
