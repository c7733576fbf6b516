// Quantities with units: exact conversions, and refusals that name the field and the value.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/units.hpp"

namespace pipesim {
namespace {

TEST(Units, Durations) {
  EXPECT_EQ(parse_duration_ns("1.2ms", "f"), 1'200'000);
  EXPECT_EQ(parse_duration_ns("20us", "f"), 20'000);
  EXPECT_EQ(parse_duration_ns("350ns", "f"), 350);
  EXPECT_EQ(parse_duration_ns("2s", "f"), 2'000'000'000);
  EXPECT_EQ(parse_duration_ns("0.5 ms", "f"), 500'000);
  EXPECT_EQ(format_duration(1'234'000), "1.234 ms");
  EXPECT_EQ(format_duration(999), "999 ns");
}

TEST(Units, SizesAndBandwidths) {
  EXPECT_EQ(parse_bytes("64MiB", "f"), 64LL << 20);
  EXPECT_EQ(parse_bytes("1.5GB", "f"), 1'500'000'000);
  EXPECT_EQ(parse_bytes("4096B", "f"), 4096);
  EXPECT_DOUBLE_EQ(parse_bandwidth_bytes_per_ns("50GB/s", "f"), 50.0);
  EXPECT_DOUBLE_EQ(parse_bandwidth_bytes_per_ns("400Gb/s", "f"), 50.0);
  EXPECT_DOUBLE_EQ(parse_bandwidth_bytes_per_ns("1GiB/s", "f"), 1.073741824);
}

TEST(Units, RefusalsNameFieldAndValue) {
  auto message = [](auto parse, const char* text) {
    try {
      parse(text, "--p2p-latency");
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  auto duration = [](std::string_view t, std::string_view f) { return parse_duration_ns(t, f); };
  auto bandwidth = [](std::string_view t, std::string_view f) { return parse_bandwidth_bytes_per_ns(t, f); };
  EXPECT_EQ(message(duration, "20"), "--p2p-latency: '20' needs a unit (ns, us, ms, s); a bare number is ambiguous");
  EXPECT_NE(message(duration, "ms").find("is not a number"), std::string::npos);
  EXPECT_NE(message(duration, "-3us").find("negative"), std::string::npos);
  EXPECT_NE(message(duration, "3 fortnights").find("unknown unit 'fortnights'"), std::string::npos);
  EXPECT_EQ(message(duration, "1e30s"),
            "--p2p-latency: '1e30s' is longer than 1e6 s (11.6 days), the longest action pipesim simulates");
  EXPECT_EQ(parse_duration_ns("1000000s", "f"), kMaxActionNs);  // the limit itself is accepted
  EXPECT_NE(message(duration, "1000001s").find("longer than 1e6 s"), std::string::npos);
  EXPECT_NE(message(bandwidth, "0GB/s").find("must be positive"), std::string::npos);
}

}  // namespace
}  // namespace pipesim
