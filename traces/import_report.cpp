// Summaries and renderings of an imported run (see import_report.hpp).
#include "traces/import_report.hpp"

#include <fmt/format.h>

namespace pipesim {
namespace {

double us(std::int64_t ns) { return static_cast<double>(ns) / 1e3; }

void add(ClassTotals& to, const ClassTotals& from) {
  to.kernels += from.kernels;
  to.time_ns += from.time_ns;
}

}  // namespace

ImportSummary summarize(const ImportedRun& run) {
  ImportSummary s;
  s.ranks = static_cast<int>(run.ranks.size());
  std::map<std::string, std::size_t, std::less<>> index;
  auto row = [&](const std::string& name) -> PhaseSummary& {
    auto [it, fresh] = index.try_emplace(name, s.phases.size());
    if (fresh) s.phases.push_back({name, 0, 0, 0, {}});
    return s.phases[it->second];
  };
  for (auto& r : run.ranks) {
    s.kernels += static_cast<std::int64_t>(r.kernels.size());
    // Phases in order of first kernel; kernels outside any annotation in "(none)".
    std::vector<bool> seen(r.phases.size(), false);
    for (auto& k : r.kernels) {
      auto cls = k.op_class >= 0 ? run.classes[static_cast<std::size_t>(k.op_class)] : std::string("unclassified");
      ClassTotals one{1, k.end_ns - k.start_ns};
      add(s.classes[cls], one);
      if (k.phase >= 0) {
        auto& p = r.phases[static_cast<std::size_t>(k.phase)];
        auto& out = row(p.name);
        if (!seen[static_cast<std::size_t>(k.phase)]) {
          seen[static_cast<std::size_t>(k.phase)] = true;
          ++out.instances;
          out.span_ns += p.end_ns - p.start_ns;
        }
        out.kernel_ns += one.time_ns;
        add(out.classes[cls], one);
      } else {
        auto& out = row("(none)");
        out.kernel_ns += one.time_ns;
        add(out.classes[cls], one);
      }
    }
  }
  return s;
}

std::string report_text(const ImportedRun& run, const ImportSummary& s) {
  std::string out;
  out += fmt::format("{} rank(s), {} GPU activities", s.ranks, s.kernels);
  if (!run.ranks.empty() && !run.ranks.front().device.empty())
    out += fmt::format(" on {} ({} SMs)", run.ranks.front().device, run.ranks.front().device_sms);
  out += "\n\nper phase (times summed over ranks and instances; mean per instance in brackets):\n";
  out += fmt::format("  {:<24} {:>5} {:>12} {:>12} {:>12}\n", "phase", "inst", "span us", "kernels us", "[mean us]");
  for (auto& p : s.phases) {
    out += fmt::format("  {:<24} {:>5} {:>12.1f} {:>12.1f} {:>12.1f}\n", p.name, p.instances, us(p.span_ns),
                       us(p.kernel_ns), p.instances ? us(p.kernel_ns) / p.instances : 0.0);
    for (auto& [cls, t] : p.classes)
      out += fmt::format("      {:<20} {:>5} kernels {:>12.1f} us\n", cls, t.kernels, us(t.time_ns));
  }
  out += "\nper operator class (all phases):\n";
  for (auto& [cls, t] : s.classes)
    out += fmt::format("  {:<24} {:>7} kernels {:>12.1f} us\n", cls, t.kernels, us(t.time_ns));
  out += "\nper rank:\n";
  out += fmt::format("  {:>4} {:>12} {:>12} {:>12} {:>12}  streams (busy us / gaps us)\n", "rank", "compute us",
                     "comm us", "overlap us", "stall us");
  for (auto& r : run.ranks) {
    out += fmt::format("  {:>4} {:>12.1f} {:>12.1f} {:>12.1f} {:>12.1f} ", r.rank, us(r.compute_busy_ns),
                       us(r.comm_busy_ns), us(r.overlap_ns), us(r.stall_ns));
    for (auto& st : r.streams)
      out += fmt::format(" {}{}: {:.1f}/{:.1f}", st.stream, st.communication ? " (comm)" : "", us(st.busy_ns),
                         us(st.gaps_ns));
    out += "\n";
  }
  if (!run.unmatched.empty()) {
    out += fmt::format("\n{} kernel name(s) matched no classification rule:\n", run.unmatched.size());
    for (auto& [name, count] : run.unmatched) out += fmt::format("  {:>6} x {}\n", count, name);
  }
  return out;
}

nlohmann::ordered_json report_json(const ImportedRun& run, const ImportSummary& s) {
  nlohmann::ordered_json j;
  j["ranks"] = s.ranks;
  j["gpu_activities"] = s.kernels;
  j["device"] = run.ranks.empty() ? "" : run.ranks.front().device;
  auto classes = [](const std::map<std::string, ClassTotals, std::less<>>& m) {
    auto out = nlohmann::ordered_json::object();
    for (auto& [cls, t] : m) out[cls] = {{"kernels", t.kernels}, {"time_us", us(t.time_ns)}};
    return out;
  };
  auto phases = nlohmann::ordered_json::array();
  for (auto& p : s.phases)
    phases.push_back({{"phase", p.name}, {"instances", p.instances}, {"span_us", us(p.span_ns)},
                      {"kernel_us", us(p.kernel_ns)}, {"classes", classes(p.classes)}});
  j["phases"] = phases;
  j["classes"] = classes(s.classes);
  auto ranks = nlohmann::ordered_json::array();
  for (auto& r : run.ranks) {
    auto streams = nlohmann::ordered_json::array();
    for (auto& st : r.streams)
      streams.push_back({{"stream", st.stream}, {"communication", st.communication}, {"kernels", st.kernels},
                         {"busy_us", us(st.busy_ns)}, {"gaps_us", us(st.gaps_ns)}});
    ranks.push_back({{"rank", r.rank}, {"source", r.source}, {"compute_busy_us", us(r.compute_busy_ns)},
                     {"comm_busy_us", us(r.comm_busy_ns)}, {"overlap_us", us(r.overlap_ns)}, {"stall_us", us(r.stall_ns)},
                     {"actions", r.actions.size()}, {"streams", streams}});
  }
  j["per_rank"] = ranks;
  auto unmatched = nlohmann::ordered_json::object();
  for (auto& [name, count] : run.unmatched) unmatched[name] = count;
  j["unclassified"] = unmatched;
  return j;
}

std::string operator_table_csv(const ImportedRun& run) {
  std::string out = "rank,phase,class,kernels,time_us\n";
  auto quoted = [](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  for (auto& r : run.ranks) {
    std::map<std::pair<std::string, std::string>, ClassTotals> rows;
    for (auto& k : r.kernels) {
      auto& t = rows[{k.phase >= 0 ? r.phases[static_cast<std::size_t>(k.phase)].name : "(none)",
                      k.op_class >= 0 ? run.classes[static_cast<std::size_t>(k.op_class)] : "unclassified"}];
      ++t.kernels;
      t.time_ns += k.end_ns - k.start_ns;
    }
    for (auto& [key, t] : rows)
      out += fmt::format("{},{},{},{},{:.3f}\n", r.rank, quoted(key.first), key.second, t.kernels, us(t.time_ns));
  }
  return out;
}

}  // namespace pipesim
