// libFuzzer harness for every parser that reads a user's file: schedule CSV and action text, cost files,
// model, cluster and hardware-profile JSON, run records (timelines), calibrations, kernel rules and Kineto
// traces. PIPESIM_FUZZ_TARGET names the parser (scripts/fuzz runs each with its seed corpus in
// tests/fuzz/corpus/<target>). A parser may refuse any input with pipesim::Error; anything else (another
// exception, a crash, a sanitizer report, a hang) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/json.hpp"
#include "models/model.hpp"
#include "schedules/action.hpp"
#include "schedules/csv.hpp"
#include "schedules/validate.hpp"
#include "sim/costs.hpp"
#include "topologies/cluster.hpp"
#include "topologies/hw_profile.hpp"
#include "traces/calibration.hpp"
#include "traces/kernel_classes.hpp"
#include "traces/kineto_reader.hpp"
#include "traces/timeline_file.hpp"

namespace {

using Parser = std::function<void(const std::string&)>;

const std::map<std::string, Parser>& parsers() {
  static const std::map<std::string, Parser> table{
      {"csv",
       [](const std::string& t) {
         auto s = pipesim::from_csv(t, "fuzz");
         pipesim::validate(s);
       }},
      {"action", [](const std::string& t) { pipesim::parse_action(t); }},
      {"cost-file",
       [](const std::string& t) {
         auto doc = pipesim::parse_json(t, "fuzz");
         pipesim::JsonReader reader(doc, "fuzz");
         auto costs = pipesim::uniform_costs("F=1ms,I=1ms,W=1ms", 4, 4);
         pipesim::apply_cost_file(costs, reader);
       }},
      {"model", [](const std::string& t) { pipesim::parse_model(t, "fuzz"); }},
      {"cluster", [](const std::string& t) { pipesim::parse_cluster(t, "fuzz"); }},
      {"hw-profile", [](const std::string& t) { pipesim::parse_hw_profile(t, "fuzz"); }},
      {"run-record", [](const std::string& t) { pipesim::parse_run_record(t, "fuzz"); }},
      {"calibration", [](const std::string& t) { pipesim::parse_calibration(t, "fuzz"); }},
      {"kernel-rules", [](const std::string& t) { pipesim::parse_kernel_rules(t, "fuzz"); }},
      {"kineto", [](const std::string& t) { pipesim::parse_kineto(t, "fuzz"); }},
  };
  return table;
}

const Parser* target = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* name = std::getenv("PIPESIM_FUZZ_TARGET");
  auto& table = parsers();
  auto it = name ? table.find(name) : table.end();
  if (it == table.end()) {
    std::fprintf(stderr, "set PIPESIM_FUZZ_TARGET to one of:");
    for (auto& [n, p] : table) std::fprintf(stderr, " %s", n.c_str());
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  target = &it->second;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (*target)(text);
  } catch (const pipesim::Error&) {
    // a refusal with a message: what bad input must get
  }
  return 0;
}
