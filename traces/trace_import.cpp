// Kineto import: attribution of kernels to annotations and actions, stream statistics, and the run
// record (see trace_import.hpp; the rules are docs/trace-import.md §3-§4).
#include "traces/trace_import.hpp"

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/csv.hpp"
#include "schedules/lower.hpp"
#include "schedules/validate.hpp"

namespace pipesim {
namespace {

// Annotations of one CPU thread or process, by start, each with the annotation enclosing it.
struct AnnotationIndex {
  std::vector<std::int32_t> order;   // event indices by (start, longest first)
  std::vector<std::int32_t> parent;  // per position in `order`: the enclosing position, -1 at the top
  std::unordered_map<std::int32_t, std::int32_t> position;  // event index -> position in `order`

  void build(const std::vector<KinetoEvent>& events) {
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      auto& x = events[static_cast<std::size_t>(a)];
      auto& y = events[static_cast<std::size_t>(b)];
      return x.ts_ns != y.ts_ns ? x.ts_ns < y.ts_ns : x.dur_ns > y.dur_ns;
    });
    parent.assign(order.size(), -1);
    std::vector<std::int32_t> stack;
    for (std::size_t i = 0; i < order.size(); ++i) {
      position[order[i]] = static_cast<std::int32_t>(i);
      auto& e = events[static_cast<std::size_t>(order[i])];
      while (!stack.empty()) {
        auto& top = events[static_cast<std::size_t>(order[static_cast<std::size_t>(stack.back())])];
        if (top.ts_ns + top.dur_ns >= e.ts_ns + e.dur_ns) break;
        stack.pop_back();
      }
      parent[i] = stack.empty() ? -1 : stack.back();
      stack.push_back(static_cast<std::int32_t>(i));
    }
  }
  // The innermost annotation holding time t, as an event index; -1 if none.
  std::int32_t innermost(const std::vector<KinetoEvent>& events, std::int64_t t) const {
    auto it = std::upper_bound(order.begin(), order.end(), t, [&](std::int64_t v, std::int32_t i) {
      return v < events[static_cast<std::size_t>(i)].ts_ns;
    });
    auto pos = static_cast<std::int32_t>(it - order.begin()) - 1;
    while (pos >= 0) {
      auto& e = events[static_cast<std::size_t>(order[static_cast<std::size_t>(pos)])];
      if (e.ts_ns + e.dur_ns >= t) return order[static_cast<std::size_t>(pos)];
      pos = parent[static_cast<std::size_t>(pos)];
    }
    return -1;
  }
  // Enclosing annotation of an event index (its position found by search).
  std::int32_t enclosing(std::int32_t event) const {
    auto pos = position.find(event);
    if (pos == position.end()) return -1;
    auto p = parent[static_cast<std::size_t>(pos->second)];
    return p < 0 ? -1 : order[static_cast<std::size_t>(p)];
  }
};

std::string_view process_of(std::string_view thread) { return thread.substr(0, thread.find('/')); }

bool is_step(std::string_view name) { return name.starts_with("ProfilerStep#"); }

int step_number(std::string_view name) {
  int n = 0;
  auto digits = name.substr(std::string_view("ProfilerStep#").size());
  std::from_chars(digits.data(), digits.data() + digits.size(), n);
  return n;
}

std::optional<int> rank_from_file_name(const std::string& path) {
  auto name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  // The last "rank" followed by a number ("crank_rank1" is rank 1).
  std::optional<int> found;
  for (std::string key : {"rank", "RANK", "Rank"})
    for (auto at = name.find(key); at != std::string::npos; at = name.find(key, at + 1)) {
      auto i = at + key.size();
      while (i < name.size() && (name[i] == '_' || name[i] == '-' || name[i] == '.')) ++i;
      int r = 0;
      auto [end, ec] = std::from_chars(name.data() + i, name.data() + name.size(), r);
      if (ec == std::errc() && end != name.data() + i) found = r;
    }
  return found;
}

struct Interval {
  std::int64_t a, b;
};

std::vector<Interval> merged(std::vector<Interval> v) {
  std::sort(v.begin(), v.end(), [](const Interval& x, const Interval& y) { return x.a < y.a; });
  std::vector<Interval> out;
  for (auto& i : v) {
    if (!out.empty() && i.a <= out.back().b) out.back().b = std::max(out.back().b, i.b);
    else out.push_back(i);
  }
  return out;
}

std::int64_t total(const std::vector<Interval>& v) {
  std::int64_t t = 0;
  for (auto& i : v) t += i.b - i.a;
  return t;
}

// Length of the intersection of two merged interval lists.
std::int64_t intersection(const std::vector<Interval>& x, const std::vector<Interval>& y) {
  std::int64_t t = 0;
  std::size_t i = 0, j = 0;
  while (i < x.size() && j < y.size()) {
    auto a = std::max(x[i].a, y[j].a), b = std::min(x[i].b, y[j].b);
    if (a < b) t += b - a;
    if (x[i].b < y[j].b) ++i;
    else ++j;
  }
  return t;
}

std::optional<Action> named_action(std::string_view name) {
  if (name.starts_with("PP:")) name.remove_prefix(3);
  if (name.empty() || name.front() < '0' || (name.front() > '9' && name.front() != '(')) return std::nullopt;
  try {
    auto action = parse_action(name);
    if (action.is_compute()) return action;
  } catch (const Error&) {
  }
  return std::nullopt;
}

class RankImporter {
 public:
  RankImporter(KinetoTrace& trace, const ImportOptions& options, ImportedRun& run)
      : trace_(trace), options_(options), run_(run) {}

  ImportedRank import(int rank, std::int64_t t0) {
    ImportedRank out;
    out.rank = rank;
    out.source = trace_.source;
    out.device = trace_.device_name;
    out.device_sms = trace_.device_sms;
    index_cpu();
    attribute(out, t0);
    observe_actions(out, t0);
    stream_stats(out);
    out.names = std::move(trace_.names);
    return out;
  }

 private:
  void index_cpu() {
    auto& ev = trace_.events;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      auto& e = ev[i];
      if (e.kind == KinetoKind::Runtime && e.correlation >= 0) launch_[e.correlation] = static_cast<std::int32_t>(i);
      if (e.kind != KinetoKind::Annotation) continue;
      auto& thread = trace_.names[e.thread];
      by_thread_[e.thread].order.push_back(static_cast<std::int32_t>(i));
      by_process_[std::string(process_of(thread))].order.push_back(static_cast<std::int32_t>(i));
    }
    for (auto& [_, index] : by_thread_) index.build(ev);
    for (auto& [_, index] : by_process_) index.build(ev);
    // User patterns number their matches in time order, so every annotation is named here, by start.
    if (options_.actions.empty()) return;
    std::vector<std::int32_t> annotations;
    for (auto& [_, index] : by_process_) annotations.insert(annotations.end(), index.order.begin(), index.order.end());
    std::stable_sort(annotations.begin(), annotations.end(), [&](std::int32_t a, std::int32_t b) {
      return ev[static_cast<std::size_t>(a)].ts_ns < ev[static_cast<std::size_t>(b)].ts_ns;
    });
    for (auto a : annotations) action_of(a);
  }

  // The innermost annotation around a launch: the launching thread's own, else one of its process (the
  // autograd engine launches backward kernels from its own thread while the main thread's annotation
  // is open).
  std::int32_t annotation_at(std::uint32_t thread, std::int64_t t) const {
    auto it = by_thread_.find(thread);
    if (it != by_thread_.end()) {
      auto a = it->second.innermost(trace_.events, t);
      if (a >= 0) return a;
    }
    auto p = by_process_.find(process_of(trace_.names[thread]));
    return p == by_process_.end() ? -1 : p->second.innermost(trace_.events, t);
  }

  // The annotation around another: on its own thread first; at the top of that thread's nesting, the
  // innermost of its process around it (the main thread's range around the autograd thread's).
  std::int32_t enclosing(std::int32_t annotation) const {
    auto thread = trace_.events[static_cast<std::size_t>(annotation)].thread;
    auto own = by_thread_.find(thread)->second.enclosing(annotation);
    if (own >= 0) return own;
    return by_process_.find(process_of(trace_.names[thread]))->second.enclosing(annotation);
  }

  int class_index(std::uint32_t name, KinetoKind kind) {
    if (class_of_name_.size() <= name) class_of_name_.resize(trace_.names.size(), -2);
    auto& c = class_of_name_[name];
    if (c != -2) return c;
    auto activity = kind == KinetoKind::Memcpy ? "memcpy" : kind == KinetoKind::Memset ? "memset" : "kernel";
    auto cls = classify(options_.rules, activity, trace_.names[name]);
    if (cls.empty()) {
      c = -1;
      return c;
    }
    auto it = std::find(run_.classes.begin(), run_.classes.end(), cls);
    if (it == run_.classes.end()) it = run_.classes.insert(run_.classes.end(), std::string(cls));
    c = static_cast<int>(it - run_.classes.begin());
    return c;
  }

  // Walks outward from an annotation: the first that names an action, and the step around it.
  struct Context {
    std::int32_t phase = -1, action = -1, step = -1;
  };
  Context context_of(std::int32_t annotation) {
    auto found = context_.find(annotation);
    if (found != context_.end()) return found->second;
    Context c;
    for (auto a = annotation; a >= 0; a = enclosing(a)) {
      auto& name = trace_.names[trace_.events[static_cast<std::size_t>(a)].name];
      if (is_step(name)) {
        if (c.step < 0) c.step = a;
        continue;
      }
      if (c.phase < 0) c.phase = a;
      if (c.action < 0 && action_of(a)) c.action = a;
    }
    return context_[annotation] = c;
  }

  std::optional<Action> action_of(std::int32_t annotation) {
    auto found = actions_.find(annotation);
    if (found != actions_.end()) return found->second;
    auto& name = trace_.names[trace_.events[static_cast<std::size_t>(annotation)].name];
    auto action = named_action(name);
    for (std::size_t k = 0; !action && k < options_.actions.size(); ++k) {
      auto& pattern = options_.actions[k];
      std::smatch m;
      if (!std::regex_search(name, m, pattern.regex)) continue;
      // Groups 1 and 3 are stages (below kMaxStages: a Pass holds 24 bits), 2 and 4 micro-batches.
      auto group = [&](std::size_t g, int fallback) {
        if (g >= m.size() || !m[g].matched) return fallback;
        auto text = m[g].str();
        int v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < 0)
          throw Error(fmt::format("--action '{}': capture group {} of annotation '{}' is '{}', not a stage or "
                                  "micro-batch number", pattern.text, g, name, text));
        if (g % 2 == 1 && v >= kMaxStages)
          throw Error(fmt::format("--action '{}': capture group {} of annotation '{}' is stage {}, past the largest "
                                  "stage number, {}", pattern.text, g, name, v, kMaxStages - 1));
        return v;
      };
      int occurrence = pattern_count_[k]++;
      if (pattern.op == Op::OverlapFB)
        action = Action::overlap({Op::F, group(1, 0), group(2, occurrence)},
                                 {Op::B, group(3, 0), group(4, occurrence)});
      else
        action = Action::single(pattern.op, group(1, 0), group(2, occurrence));
    }
    return actions_[annotation] = action;
  }

  void attribute(ImportedRank& out, std::int64_t t0) {
    std::unordered_map<std::int32_t, int> phase_of_annotation;
    for (auto& e : trace_.events) {
      if (e.kind != KinetoKind::Kernel && e.kind != KinetoKind::Memcpy && e.kind != KinetoKind::Memset) continue;
      ImportedKernel k;
      k.start_ns = e.ts_ns - t0;
      k.end_ns = k.start_ns + e.dur_ns;
      k.stream = e.stream;
      k.name = e.name;
      k.op_class = class_index(e.name, e.kind);
      if (k.op_class < 0) ++run_.unmatched[trace_.names[e.name]];
      auto launch = launch_.find(e.correlation);
      if (launch != launch_.end()) {
        auto& call = trace_.events[static_cast<std::size_t>(launch->second)];
        auto annotation = annotation_at(call.thread, call.ts_ns);
        if (annotation >= 0) {
          auto c = context_of(annotation);
          if (c.phase >= 0) {
            auto [it, fresh] = phase_of_annotation.try_emplace(c.phase, static_cast<int>(out.phases.size()));
            if (fresh) {
              auto& a = trace_.events[static_cast<std::size_t>(c.phase)];
              out.phases.push_back({trace_.names[a.name], k.start_ns, k.end_ns, {}});
            }
            k.phase = it->second;
            auto& phase = out.phases[static_cast<std::size_t>(k.phase)];
            phase.start_ns = std::min(phase.start_ns, k.start_ns);
            phase.end_ns = std::max(phase.end_ns, k.end_ns);
            auto& totals = phase.classes[k.op_class >= 0 ? run_.classes[static_cast<std::size_t>(k.op_class)] : "unclassified"];
            ++totals.kernels;
            totals.time_ns += k.end_ns - k.start_ns;
          }
          if (c.action >= 0) kernel_actions_.emplace_back(out.kernels.size(), c.action);
        }
      }
      out.kernels.push_back(k);
    }
    // Kernels by start; remember where each went for the action link.
    std::vector<std::size_t> order(out.kernels.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return out.kernels[a].start_ns < out.kernels[b].start_ns; });
    std::vector<std::size_t> position(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) position[order[i]] = i;
    std::vector<ImportedKernel> sorted(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) sorted[i] = out.kernels[order[i]];
    out.kernels = std::move(sorted);
    for (auto& [kernel, action] : kernel_actions_) kernel = position[kernel];
  }

  void observe_actions(ImportedRank& out, std::int64_t t0) {
    // Every annotation naming an action is one, with or without kernels.
    std::unordered_map<std::int32_t, std::size_t> slot;
    for (std::size_t i = 0; i < trace_.events.size(); ++i) {
      auto& e = trace_.events[i];
      if (e.kind != KinetoKind::Annotation) continue;
      auto a = static_cast<std::int32_t>(i);
      auto action = action_of(a);
      if (!action) continue;
      auto c = context_of(a);
      if (c.action != a) continue;  // nested inside another action's annotation: part of that one
      int step = c.step >= 0 ? step_number(trace_.names[trace_.events[static_cast<std::size_t>(c.step)].name]) : -1;
      slot[a] = out.actions.size();
      out.actions.push_back({*action, e.ts_ns - t0, e.ts_ns + e.dur_ns - t0, step});
    }
    std::vector<bool> has_kernels(out.actions.size(), false);
    for (auto& [kernel, annotation] : kernel_actions_) {
      auto it = slot.find(annotation);
      if (it == slot.end()) continue;
      auto& k = out.kernels[kernel];
      k.action = static_cast<int>(it->second);
      auto& act = out.actions[it->second];
      if (!has_kernels[it->second]) {
        act.start_ns = k.start_ns;
        act.end_ns = k.end_ns;
        has_kernels[it->second] = true;
      }
      act.start_ns = std::min(act.start_ns, k.start_ns);
      act.end_ns = std::max(act.end_ns, k.end_ns);
    }
    std::vector<std::size_t> order(out.actions.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return out.actions[a].start_ns < out.actions[b].start_ns; });
    std::vector<int> renumber(order.size());
    std::vector<ObservedAction> sorted;
    for (std::size_t i = 0; i < order.size(); ++i) {
      renumber[order[i]] = static_cast<int>(i);
      sorted.push_back(out.actions[order[i]]);
    }
    out.actions = std::move(sorted);
    for (auto& k : out.kernels)
      if (k.action >= 0) k.action = renumber[static_cast<std::size_t>(k.action)];
  }

  void stream_stats(ImportedRank& out) {
    std::map<int, StreamStats> streams;
    std::map<int, std::int64_t> comm_time;
    for (auto& k : out.kernels) {
      auto& s = streams[k.stream];
      if (s.kernels == 0) s.first_ns = k.start_ns;
      s.stream = k.stream;
      ++s.kernels;
      s.busy_ns += k.end_ns - k.start_ns;
      s.last_ns = std::max(s.last_ns, k.end_ns);
      if (k.op_class >= 0 && class_group(run_.classes[static_cast<std::size_t>(k.op_class)]) == ClassGroup::Comm)
        comm_time[k.stream] += k.end_ns - k.start_ns;
    }
    std::vector<Interval> compute, comm;
    std::map<int, std::vector<Interval>> per_stream;
    for (auto& [id, s] : streams) s.communication = 2 * comm_time[id] > s.busy_ns;
    for (auto& k : out.kernels) {
      per_stream[k.stream].push_back({k.start_ns, k.end_ns});
      (streams[k.stream].communication ? comm : compute).push_back({k.start_ns, k.end_ns});
    }
    for (auto& [id, s] : streams) {
      auto busy = merged(per_stream[id]);
      s.gaps_ns = (s.last_ns - s.first_ns) - total(busy);
      out.streams.push_back(s);
    }
    auto cu = merged(std::move(compute)), co = merged(std::move(comm));
    out.compute_busy_ns = total(cu);
    out.comm_busy_ns = total(co);
    out.overlap_ns = intersection(cu, co);
    if (!cu.empty()) {
      // Communication inside the compute span with no compute kernel running: the compute stream stalls.
      std::vector<Interval> window{{cu.front().a, cu.back().b}};
      out.stall_ns = intersection(window, co) - out.overlap_ns;
    }
  }

  KinetoTrace& trace_;
  const ImportOptions& options_;
  ImportedRun& run_;
  std::unordered_map<std::int64_t, std::int32_t> launch_;
  std::unordered_map<std::uint32_t, AnnotationIndex> by_thread_;
  std::map<std::string, AnnotationIndex, std::less<>> by_process_;
  std::vector<int> class_of_name_;
  std::unordered_map<std::int32_t, Context> context_;
  std::unordered_map<std::int32_t, std::optional<Action>> actions_;
  std::vector<int> pattern_count_ = std::vector<int>(options_.actions.size(), 0);
  std::vector<std::pair<std::size_t, std::int32_t>> kernel_actions_;  // (kernel, action annotation)
};

}  // namespace

ActionPattern parse_action_pattern(const std::string& text) {
  auto eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(fmt::format("--action '{}': expected REGEX=KIND with KIND one of F, I, W, B, FB", text));
  ActionPattern p;
  p.text = text;
  auto kind = text.substr(eq + 1);
  static const std::map<std::string, Op, std::less<>> kinds{
      {"F", Op::F}, {"I", Op::I}, {"W", Op::W}, {"B", Op::B}, {"FB", Op::OverlapFB}, {"F&B", Op::OverlapFB}};
  auto it = kinds.find(kind);
  if (it == kinds.end())
    throw Error(fmt::format("--action '{}': kind '{}' is not one of F, I, W, B, FB", text, kind));
  p.op = it->second;
  try {
    p.regex = std::regex(text.substr(0, eq), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error(fmt::format("--action '{}': '{}' is not a regular expression ({})", text, text.substr(0, eq), e.what()));
  }
  return p;
}

ImportedRun import_traces(std::vector<KinetoTrace> traces, const ImportOptions& options) {
  if (traces.empty()) throw Error("import: no traces given");
  // Ranks: distributedInfo, else the file name, else the order given.
  std::vector<int> ranks;
  for (std::size_t i = 0; i < traces.size(); ++i) {
    auto r = traces[i].rank ? traces[i].rank : rank_from_file_name(traces[i].source);
    ranks.push_back(r ? *r : static_cast<int>(i));
  }
  for (std::size_t i = 0; i < traces.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (ranks[i] == ranks[j])
        throw Error(fmt::format("import: '{}' and '{}' are both rank {}; give one trace per rank", traces[j].source,
                                traces[i].source, ranks[i]));
  // One clock for all ranks: the earliest GPU activity of any (Kineto's timestamps are wall-clock time).
  std::int64_t t0 = INT64_MAX;
  for (auto& t : traces)
    for (auto& e : t.events)
      if (e.kind == KinetoKind::Kernel || e.kind == KinetoKind::Memcpy || e.kind == KinetoKind::Memset)
        t0 = std::min(t0, e.ts_ns);
  if (t0 == INT64_MAX)
    for (auto& t : traces)
      for (auto& e : t.events) t0 = std::min(t0, e.ts_ns);
  if (t0 == INT64_MAX) t0 = 0;
  ImportedRun run;
  std::vector<std::size_t> order(traces.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ranks[a] < ranks[b]; });
  for (auto i : order) {
    RankImporter importer(traces[i], options, run);
    run.ranks.push_back(importer.import(ranks[i], t0));
  }
  return run;
}

RunRecord to_run_record(const ImportedRun& run) {
  for (std::size_t i = 0; i < run.ranks.size(); ++i)
    if (run.ranks[i].rank != static_cast<int>(i))
      throw Error(fmt::format("import: a timeline needs the traces of ranks 0..{}, but rank {} is missing",
                              run.ranks.back().rank, i));
  std::map<int, std::vector<std::vector<const ObservedAction*>>> steps;  // step -> rank -> actions
  for (auto& r : run.ranks)
    for (auto& a : r.actions) {
      auto& step = steps[a.step];
      step.resize(run.ranks.size());
      step[static_cast<std::size_t>(r.rank)].push_back(&a);
    }
  if (steps.empty())
    throw Error("import: no annotation names a pipeline action (0F3, PP:0F3, or --action REGEX=KIND); the report "
                "is available, the timeline is not");
  // The first step that every rank took part in gives the schedule; others must run the same programs.
  std::vector<std::vector<Action>> programs;
  const std::vector<std::vector<const ObservedAction*>>* first = nullptr;
  for (auto& [_, step] : steps) {
    if (std::any_of(step.begin(), step.end(), [](auto& v) { return v.empty(); })) continue;
    first = &step;
    break;
  }
  if (!first) throw Error("import: no profiler step holds actions of every rank");
  for (auto& actions : *first) {
    programs.emplace_back();
    for (auto* a : actions) programs.back().push_back(a->action);
  }
  auto schedule = schedule_from_programs(programs, "imported trace");
  schedule.name = "imported";
  try {
    validate(schedule);
  } catch (const Error& e) {
    throw Error(fmt::format("import: the traced actions do not form a complete schedule: {}", e.what()));
  }
  RunRecord record;
  record.schedule = lower(schedule);
  record.source = "measured";
  nlohmann::json files = nlohmann::json::array();
  for (auto& r : run.ranks) files.push_back(r.source);
  record.workload = {{"imported_from", files}, {"device", run.ranks.front().device}};
  int dropped = 0;
  for (auto& [_, step] : steps) {
    bool same = step.size() == programs.size();
    for (std::size_t r = 0; same && r < step.size(); ++r) {
      same = step[r].size() == programs[r].size();
      for (std::size_t k = 0; same && k < step[r].size(); ++k) same = step[r][k]->action == programs[r][k];
    }
    if (!same) {
      ++dropped;
      continue;
    }
    std::int64_t begin = INT64_MAX;
    for (auto& actions : step)
      for (auto* a : actions) begin = std::min(begin, a->start_ns);
    std::vector<Span> spans;
    for (std::size_t r = 0; r < step.size(); ++r)
      for (auto* a : step[r]) {
        Span s;
        s.rank = static_cast<int>(r);
        s.action = a->action;
        s.start_ns = a->start_ns - begin;
        s.end_ns = a->end_ns - begin;
        spans.push_back(s);
      }
    record.steps.push_back(std::move(spans));
  }
  if (dropped) record.workload["dropped_steps"] = dropped;
  return record;
}

}  // namespace pipesim
