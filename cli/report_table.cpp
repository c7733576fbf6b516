// The human tables: one schedule's per-rank metrics, several schedules side by side, and a whole training
// step (plan, throughput, exposed communication, memory per GPU).
#include "cli/report_table.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "cli/report_csv.hpp"
#include "common/units.hpp"

namespace pipesim::cli {
namespace {

double gib(double bytes) { return bytes / 1073741824.0; }

std::string si(double v) {
  if (v >= 1e12) return fmt::format("{:.2f}T", v / 1e12);
  if (v >= 1e9) return fmt::format("{:.2f}B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  return fmt::format("{:.0f}", v);
}

}  // namespace

std::string schedule_metrics_table(const Schedule& s, const Metrics& m) {
  std::string out = fmt::format("{} — {} ranks, {} stages, {} micro-batches\n", s.name, s.ranks, s.stages, s.microbatches);
  out += fmt::format("makespan {}   bubble rate {:.4f}   point-to-point {:.3f} MB\n\n", format_duration(m.makespan_ns),
                     m.bubble_rate, static_cast<double>(m.p2p_bytes) / 1e6);
  out += fmt::format("{:>4}  {:>13}  {:>13}  {:>13}  {:>16}  {:>15}  {:>6}\n", "rank", "busy", "idle", "exposed comm",
                     "peak activations", "peak act. bytes", "params");
  for (auto& r : m.ranks)
    out += fmt::format("{:>4}  {:>13}  {:>13}  {:>13}  {:>16.3f}  {:>15.0f}  {:>5.2g}x\n", r.rank, format_duration(r.busy_ns),
                       format_duration(r.idle_ns), format_duration(r.exposed_comm_ns), r.peak_activations,
                       r.peak_activation_bytes, r.parameter_copies);
  return out;
}

std::string schedule_comparison_table(const std::vector<Schedule>& schedules, const std::vector<Metrics>& metrics,
                             bool cost_per_rank) {
  std::string out;
  bool uneven = false;
  for (auto& s : schedules) uneven = uneven || s.chunk_share(0) != schedules[0].chunk_share(0);
  if (uneven && !cost_per_rank)
    out += "note: --cost is per chunk, and these schedules cut the model into chunks of different sizes (ZB-V and\n"
           "      DualPipeV: 2 per rank, interleaved: v per rank); add --cost-per-rank to compare them fairly.\n\n";
  out += fmt::format("{:<17} {:>13} {:>8} {:>13} {:>13} {:>9} {:>7}\n", "schedule", "makespan", "bubble",
                                "max idle", "max exp.comm", "peak act.", "params");
  for (std::size_t i = 0; i < schedules.size(); ++i) {
    auto& m = metrics[i];
    std::int64_t comm = 0;
    double params = 0;
    for (auto& r : m.ranks) {
      comm = std::max(comm, r.exposed_comm_ns);
      params = std::max(params, r.parameter_copies);
    }
    out += fmt::format("{:<17} {:>13} {:>8.4f} {:>13} {:>13} {:>9.3f} {:>6.2g}x\n", schedules[i].name,
                       format_duration(m.makespan_ns), m.bubble_rate, format_duration(m.max_idle_ns()),
                       format_duration(comm), m.max_peak_activations(), params);
  }
  return out;
}

std::string describe_plan(const StepReport& r, bool with_schedule) {
  auto& p = r.plan.plan;
  return fmt::format("{} on {}: {}PP{} DP{} EP{} TP{}, {} micro-batches x {} x {} tokens (global batch {}), {}{}{}",
                     r.model, r.cluster, with_schedule ? p.schedule + ", " : "", p.pp, p.dp, p.ep, p.tp,
                     p.microbatches, p.micro_batch_size, p.seq, p.global_batch, to_string(p.precision),
                     p.recompute ? ", full recomputation" : "", p.selective_recompute ? ", selective recomputation" : "");
}

std::string step_report_table(const StepReport& r) {
  std::string out = describe_plan(r) + "\n";
  out += r.simulated_replicas > 1 ? fmt::format("simulated all {} data-parallel replicas (--full)\n", r.simulated_replicas)
                                  : "simulated one representative GPU per pipeline stage (the plan is symmetric; --full "
                                    "simulates every GPU)\n";
  out += fmt::format("step {}   pipeline {}   tokens/s {}   tokens/day {}\n", format_duration(r.step_ns),
                     format_duration(r.pipeline_ns), si(r.tokens_per_s), si(r.tokens_per_day));
  out += fmt::format("MFU {:.1f}% ({} convention, {:.1f} GFLOP/token; causal attention {:.1f}%, full attention "
                     "{:.1f}%)   bubble rate {:.4f}\n",
                     100 * r.mfu, to_string(r.plan.plan.flops_convention), r.flops_per_token / 1e9, 100 * r.mfu_causal,
                     100 * r.mfu_full, r.bubble_rate);
  if (r.compute_comm_ratio > 0)
    out += fmt::format("EP compute:communication {:.2f} : 1\n", r.compute_comm_ratio);
  out += fmt::format("exposed communication (most on any rank; DP on the last to finish): EP {}, PP {}, DP {}\n",
                     format_duration(r.exposed_ep_ns), format_duration(r.exposed_pp_ns), format_duration(r.exposed_dp_ns));
  out += fmt::format("\nmemory per GPU (GiB, capacity {:.0f}):\n{:>4} {:>9} {:>9} {:>10} {:>12} {:>9}  {}\n",
                     gib(r.capacity_bytes), "rank", "params", "grads", "optimizer", "activations", "total", "");
  for (std::size_t i = 0; i < r.memory.size(); ++i) {
    auto& m = r.memory[i];
    out += fmt::format("{:>4} {:>9.2f} {:>9.2f} {:>10.2f} {:>12.2f} {:>9.2f}  {}\n", i, gib(m.params), gib(m.grads),
                       gib(m.optimizer), gib(m.activations), gib(m.total()),
                       m.total() <= r.capacity_bytes ? "" : "DOES NOT FIT");
  }
  if (!r.fits) out += "this plan does not fit in GPU memory: try --recompute, more pipeline or expert ranks, or fewer micro-batches in flight\n";
  return out;
}

std::string step_comparison_table(const std::vector<StepReport>& reports) {
  std::string out = fmt::format("{:<17} {:>12} {:>10} {:>8} {:>8} {:>8} {:>11}  {}\n", "schedule", "step", "tokens/s",
                                "MFU", "bubble", "EP c:c", "peak GiB", "fits");
  for (auto& r : reports) {
    double peak = 0;
    for (auto& m : r.memory) peak = std::max(peak, m.total());
    out += fmt::format("{:<17} {:>12} {:>10} {:>7.1f}% {:>8.4f} {:>8.2f} {:>11.1f}  {}\n", r.plan.plan.schedule,
                       format_duration(r.step_ns), si(r.tokens_per_s), 100 * r.mfu, r.bubble_rate,
                       r.compute_comm_ratio, gib(peak), r.fits ? "yes" : "NO");
  }
  return out;
}

std::string rows_table(const std::vector<nlohmann::ordered_json>& rows, const std::vector<std::string>& columns) {
  std::string out;
  std::vector<std::size_t> widths;
  for (auto& c : columns) {
    std::size_t w = c.size();
    for (auto& r : rows) w = std::max(w, r.contains(c) ? cell_text(r[c]).size() : 0);
    widths.push_back(std::min<std::size_t>(w, 60));
  }
  for (std::size_t i = 0; i < columns.size(); ++i) out += fmt::format("{:<{}} ", columns[i], widths[i]);
  out += "\n";
  for (auto& r : rows) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      auto text = r.contains(columns[i]) ? cell_text(r[columns[i]]) : "";
      if (text.size() > 60) text = text.substr(0, 57) + "...";
      out += fmt::format("{:<{}} ", text, widths[i]);
    }
    out += "\n";
  }
  return out;
}

}  // namespace pipesim::cli
