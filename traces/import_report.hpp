// What `pipesim import --report` prints: per phase (annotation name) and per operator class, kernel count
// and GPU time, summed over ranks and instances; per rank, stream busy time, gaps, compute/communication
// overlap and stalls; the kernels no rule classified. Also the operator table (CSV) import writes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/trace_import.hpp"

namespace pipesim {

struct PhaseSummary {
  std::string name;
  int instances = 0;                 // annotation instances that launched kernels, over all ranks
  std::int64_t span_ns = 0;          // sum of instances' GPU spans (first kernel start to last kernel end)
  std::int64_t kernel_ns = 0;        // sum of kernel durations
  std::map<std::string, ClassTotals, std::less<>> classes;
};

struct ImportSummary {
  int ranks = 0;
  std::int64_t kernels = 0;
  std::vector<PhaseSummary> phases;  // in order of first appearance; "(none)" for kernels outside annotations
  std::map<std::string, ClassTotals, std::less<>> classes;  // over everything
};

ImportSummary summarize(const ImportedRun& run);

std::string report_text(const ImportedRun& run, const ImportSummary& summary);
nlohmann::ordered_json report_json(const ImportedRun& run, const ImportSummary& summary);
// One row per rank, phase and operator class: rank,phase,class,kernels,time_us.
std::string operator_table_csv(const ImportedRun& run);

}  // namespace pipesim
