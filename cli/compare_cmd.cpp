// `pipesim compare MEASURED.json PREDICTED.json`: how far a prediction is from a measured run: the
// makespan error, per-rank bubble measured against predicted, and the actions and ranks that deviate most.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/input_file.hpp"
#include "common/atomic_file.hpp"
#include "traces/calibration.hpp"

namespace pipesim::cli {

void add_compare_command(CLI::App& app) {
  struct Args {
    std::string measured, predicted, format = "table";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("compare", "Compare a measured run with a predicted one");
  cmd->add_option("measured", args->measured, "Timeline of the run")->required()->check(existing_file());
  cmd->add_option("predicted", args->predicted, "Timeline the simulator predicted")->required()->check(existing_file());
  cmd->add_option("--format,-f", args->format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  cmd->callback([args] {
    auto c = compare(parse_run_record(read_file(args->measured), args->measured),
                     parse_run_record(read_file(args->predicted), args->predicted));
    if (args->format == "json") {
      nlohmann::ordered_json j;
      j["measured_makespan_us"] = c.measured_makespan_ns / 1e3;
      j["predicted_makespan_us"] = c.predicted_makespan_ns / 1e3;
      j["makespan_error"] = c.makespan_error;
      auto ranks = nlohmann::ordered_json::array();
      for (auto& r : c.ranks)
        ranks.push_back({{"rank", r.rank}, {"bubble_measured", r.bubble_measured}, {"bubble_predicted", r.bubble_predicted},
                         {"busy_ratio", r.busy_ratio}});
      j["ranks"] = ranks;
      auto deviations = nlohmann::ordered_json::array();
      for (auto& d : c.deviations)
        deviations.push_back({{"action", d.action}, {"rank", d.rank}, {"measured_us", d.measured_ns / 1e3},
                              {"predicted_us", d.predicted_ns / 1e3}, {"ratio", d.ratio}});
      j["deviating_actions"] = deviations;
      if (c.straggler >= 0)
        j["straggler"] = {{"rank", c.straggler}, {"busy_ratio", c.ranks[static_cast<std::size_t>(c.straggler)].busy_ratio},
                          {"median_busy_ratio", c.median_busy_ratio}};
      else
        j["straggler"] = nullptr;
      print_or_write(j.dump(1) + "\n", {});
      return;
    }
    fmt::print("makespan: measured {:.3f} ms, predicted {:.3f} ms, error {:+.1f}%\n\n", c.measured_makespan_ns / 1e6,
               c.predicted_makespan_ns / 1e6, 100 * c.makespan_error);
    fmt::print("{:>4} {:>16} {:>17} {:>20}\n", "rank", "bubble measured", "bubble predicted", "busy measured/pred.");
    for (auto& r : c.ranks)
      fmt::print("{:>4} {:>16.3f} {:>17.3f} {:>20.2f}\n", r.rank, r.bubble_measured, r.bubble_predicted, r.busy_ratio);
    if (c.straggler >= 0)
      fmt::print("\nstraggler: rank {} is busy x{:.2f} its prediction; the median rank x{:.2f}\n", c.straggler,
                 c.ranks[static_cast<std::size_t>(c.straggler)].busy_ratio, c.median_busy_ratio);
    fmt::print("\nactions that deviate most (measured / predicted):\n");
    for (auto& d : c.deviations)
      fmt::print("  {:<24} rank {:>2}  {:>10.1f} us vs {:>10.1f} us  x{:.2f}\n", d.action, d.rank, d.measured_ns / 1e3,
                 d.predicted_ns / 1e3, d.ratio);
  });
}

}  // namespace pipesim::cli
