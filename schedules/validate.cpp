// Schedule validation (see validate.hpp). Problems are collected (up to a few) so one run shows the
// pattern; the deadlock report names the cycle and prints the grid with it marked.
#include "schedules/validate.hpp"

#include <algorithm>
#include <optional>

#include <boost/graph/compressed_sparse_row_graph.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <fmt/format.h>

#include "common/error.hpp"
#include "schedules/dependencies.hpp"
#include "schedules/grid.hpp"
#include "schedules/play.hpp"

namespace pipesim {
namespace {

constexpr std::size_t kMaxProblems = 8;

class Problems {
 public:
  explicit Problems(std::string what) : what_(std::move(what)) {}
  void add(std::string problem) {
    if (list_.size() < kMaxProblems) list_.push_back(std::move(problem));
    ++count_;
  }
  void throw_if_any() const {
    if (count_ == 0) return;
    std::string message = fmt::format("invalid schedule: {}", what_);
    for (auto& p : list_) message += "\n  - " + p;
    if (count_ > list_.size()) message += fmt::format("\n  ... and {} more", count_ - list_.size());
    throw Error(message);
  }

 private:
  std::string what_;
  std::vector<std::string> list_;
  std::size_t count_ = 0;
};

void check_shape(const Schedule& s) {
  if (s.ranks < 1) throw Error(fmt::format("invalid schedule: ranks is {}; it must be at least 1", s.ranks));
  if (s.stages < 1) throw Error(fmt::format("invalid schedule: stages is {}; it must be at least 1", s.stages));
  if (s.stages > kMaxStages)
    throw Error(fmt::format("invalid schedule: stages is {}; pipesim numbers at most {} stages", s.stages, kMaxStages));
  if (s.microbatches < 1)
    throw Error(fmt::format("invalid schedule: microbatches is {}; it must be at least 1", s.microbatches));
  if (s.stage_to_rank.size() != static_cast<std::size_t>(s.stages))
    throw Error(fmt::format("invalid schedule: stage_to_rank has {} entries for {} stages", s.stage_to_rank.size(),
                            s.stages));
  for (std::size_t st = 0; st < s.stage_to_rank.size(); ++st)
    if (s.stage_to_rank[st] < 0 || s.stage_to_rank[st] >= s.ranks)
      throw Error(fmt::format("invalid schedule: stage_to_rank[{}] is {}, not a rank in 0..{}", st,
                              s.stage_to_rank[st], s.ranks - 1));
  if (s.programs.size() != static_cast<std::size_t>(s.ranks))
    throw Error(fmt::format("invalid schedule: {} programs for {} ranks", s.programs.size(), s.ranks));
  if (s.route_of.size() != static_cast<std::size_t>(s.microbatches))
    throw Error(fmt::format("invalid schedule: {} routes assigned for {} micro-batches", s.route_of.size(),
                            s.microbatches));
  for (auto r : s.route_of)
    if (r < 0 || static_cast<std::size_t>(r) >= s.routes.size())
      throw Error(fmt::format("invalid schedule: route index {} out of range", r));
  for (std::size_t mb = 0; mb < s.route_of.size(); ++mb)
    if (s.routes[static_cast<std::size_t>(s.route_of[mb])].empty())
      throw Error(fmt::format("invalid schedule: micro-batch {} visits no stage (no action names it), but "
                              "micro-batches are numbered 0..{} without gaps",
                              mb, s.microbatches - 1));
  for (auto& route : s.routes) {
    std::vector<bool> seen(static_cast<std::size_t>(s.stages));
    for (auto st : route) {
      if (st < 0 || st >= s.stages || seen[static_cast<std::size_t>(st)])
        throw Error(fmt::format("invalid schedule: route {} names stage {} out of range or twice",
                                fmt::join(route, " "), st));
      seen[static_cast<std::size_t>(st)] = true;
    }
  }
  // Every stage on some route, at the same position on each (the runtime gives it one chunk of layers).
  std::vector<int> position(static_cast<std::size_t>(s.stages), -1);
  for (auto& route : s.routes)
    for (std::size_t k = 0; k < route.size(); ++k) {
      auto& at = position[static_cast<std::size_t>(route[k])];
      if (at >= 0 && at != static_cast<int>(k))
        throw Error(fmt::format("invalid schedule: stage {} is chunk {} of one route and chunk {} of another; a stage "
                                "must hold the same layers for every micro-batch",
                                route[k], at, k));
      at = static_cast<int>(k);
    }
  for (int st = 0; st < s.stages; ++st)
    if (position[static_cast<std::size_t>(st)] < 0)
      throw Error(fmt::format("invalid schedule: no micro-batch visits stage {}", st));
  for (int st = 0; st < s.stages; ++st)
    if (s.position(st) != position[static_cast<std::size_t>(st)])
      throw Error(fmt::format("invalid schedule: the routes of stage {} changed without set_routes()", st),
                  Error::Kind::Internal);
}

// Each pass names a real stage and micro-batch, sits on the rank that holds its stage, on the
// micro-batch's route. Must pass before PassIndex may index by stage and micro-batch.
void check_placement(const Schedule& s) {
  Problems problems("actions out of place");
  // A micro-batch visits a stage when its route holds the stage at the stage's position (check_shape():
  // every stage has one position, the same on every route that visits it).
  auto visits = [&](int microbatch, int stage) {
    auto& route = s.route(microbatch);
    auto at = static_cast<std::size_t>(s.position(stage));
    return at < route.size() && route[at] == stage;
  };
  for (std::size_t r = 0; r < s.programs.size(); ++r) {
    for (std::size_t step = 0; step < s.programs[r].size(); ++step) {
      for (auto& pass : s.programs[r][step].passes()) {
        bool fine = pass.stage >= 0 && pass.stage < s.stages && pass.microbatch >= 0 &&
                    pass.microbatch < s.microbatches &&
                    s.stage_to_rank[static_cast<std::size_t>(pass.stage)] == static_cast<int>(r) &&
                    visits(pass.microbatch, pass.stage);
        if (fine) continue;
        auto where = fmt::format("rank {} step {}: {}", r, step, to_string(pass));
        if (pass.stage < 0 || pass.stage >= s.stages) {
          problems.add(fmt::format("{} names stage {}, but there are {} stages (0..{})", where, pass.stage,
                                   s.stages, s.stages - 1));
        } else if (pass.microbatch < 0 || pass.microbatch >= s.microbatches) {
          problems.add(fmt::format("{} names micro-batch {}, but there are {} (0..{})", where, pass.microbatch,
                                   s.microbatches, s.microbatches - 1));
        } else if (s.stage_to_rank[static_cast<std::size_t>(pass.stage)] != static_cast<int>(r)) {
          problems.add(fmt::format("{} is on rank {}, but stage {} belongs to rank {}", where, r, pass.stage,
                                   s.stage_to_rank[static_cast<std::size_t>(pass.stage)]));
        } else {
          problems.add(fmt::format("{}: micro-batch {} does not visit stage {} (its stages are {})", where,
                                   pass.microbatch, pass.stage, fmt::join(s.route(pass.microbatch), " ")));
        }
      }
    }
  }
  problems.throw_if_any();
}

// One F per visited stage and either one B or one I plus one W; after lowering, exactly the SEND/RECV
// pairs of the cross-rank hand-offs.
void check_complete(const Schedule& s, const PassIndex& index) {
  Problems problems("passes missing or inconsistent");
  auto rank = [&](int stage) { return s.stage_to_rank[static_cast<std::size_t>(stage)]; };
  auto missing = [&](Op op, int stage, int mb, std::string_view why) {
    problems.add(fmt::format("missing {} on rank {}: {}", to_string(Pass{op, stage, mb}), rank(stage), why));
  };
  std::size_t expected_comm = 0;
  for (int mb = 0; mb < s.microbatches; ++mb) {
    auto& route = s.route(mb);
    for (std::size_t k = 0; k < route.size(); ++k) {
      int st = route[k];
      bool f = index.node(Op::F, st, mb) >= 0, i = index.node(Op::I, st, mb) >= 0;
      bool w = index.node(Op::W, st, mb) >= 0, b = index.node(Op::B, st, mb) >= 0;
      if (!f) missing(Op::F, st, mb, "every stage a micro-batch visits needs one forward");
      if (b && (i || w))
        problems.add(fmt::format("{} has both a full backward (B) and a split one (I/W); use one or the other",
                                 to_string(Pass{Op::B, st, mb})));
      else if (!b && !i && !w)
        missing(Op::B, st, mb, "every visited stage needs a backward: B, or I and W");
      else if (i && !w)
        missing(Op::W, st, mb, "a split backward needs its weight pass");
      else if (w && !i)
        missing(Op::I, st, mb, "a split backward needs its input pass");
      if (!index.lowered() || k + 1 == route.size() || rank(route[k + 1]) == rank(st)) continue;
      int next = route[k + 1];
      expected_comm += 4;
      for (auto [op, stage] : {std::pair{Op::SendF, st}, {Op::RecvF, next}, {Op::SendB, next}, {Op::RecvB, st}})
        if (index.node(op, stage, mb) < 0)
          missing(op, stage, mb, fmt::format("stages {} and {} are on different ranks", st, next));
    }
  }
  problems.throw_if_any();
  if (!index.lowered()) return;
  std::size_t comm = 0;
  for (auto& program : s.programs)
    for (auto& action : program) comm += action.is_compute() ? 0 : 1;
  if (comm == expected_comm) return;
  for (std::size_t r = 0; r < s.programs.size(); ++r)
    for (std::size_t step = 0; step < s.programs[r].size(); ++step) {
      auto& a = s.programs[r][step];
      if (a.is_compute()) continue;
      bool forward = a.op == Op::SendF || a.op == Op::RecvF;
      bool sender = a.op == Op::SendF || a.op == Op::SendB;
      int peer = forward == sender ? s.stage_after(a.stage(), a.microbatch()) : s.stage_before(a.stage(), a.microbatch());
      if (peer < 0 || rank(peer) == rank(a.stage()))
        problems.add(fmt::format("rank {} step {}: {} has no peer on another rank to talk to", r, step,
                                 to_string(a)));
    }
  problems.throw_if_any();
}

// A pass whose input is produced on its own rank must come after the producer.
void check_rank_order(const Schedule& s, const PassIndex& index) {
  Problems problems("passes before the passes they need");
  Pass needs[2];
  for (int u = 0; u < index.nodes(); ++u) {
    int r = index.rank_of(u);
    auto& action = s.programs[static_cast<std::size_t>(r)][static_cast<std::size_t>(index.step_of(u))];
    for (auto& pass : action.passes()) {
      int n = producers(s, index, pass, needs);
      for (int j = 0; j < n; ++j) {
        int v = index.node(needs[j]);
        if (v < 0 || index.rank_of(v) != r || v < u) continue;
        problems.add(v == u ? fmt::format("rank {} step {}: {} pairs {} with {}, which it needs first", r,
                                          index.step_of(u), to_string(action), to_string(pass),
                                          to_string(needs[j]))
                            : fmt::format("rank {} step {}: {} needs {}, which runs later on rank {} (step {})", r,
                                          index.step_of(u), to_string(pass), to_string(needs[j]), r,
                                          index.step_of(v)));
      }
    }
  }
  problems.throw_if_any();
}

using Graph = boost::compressed_sparse_row_graph<boost::directedS>;
using Vertex = Graph::vertex_descriptor;

struct CycleFinder : boost::default_dfs_visitor {
  std::vector<Vertex>* parent;
  std::optional<std::pair<Vertex, Vertex>>* back;
  void tree_edge(Graph::edge_descriptor e, const Graph& g) const { (*parent)[boost::target(e, g)] = boost::source(e, g); }
  void back_edge(Graph::edge_descriptor e, const Graph& g) const {
    if (!*back) *back = std::pair{boost::source(e, g), boost::target(e, g)};
  }
};

std::string describe(const Schedule& s, const PassIndex& index, int node) {
  int r = index.rank_of(node), step = index.step_of(node);
  return fmt::format("{} (rank {}, step {})",
                     to_string(s.programs[static_cast<std::size_t>(r)][static_cast<std::size_t>(step)]), r, step);
}

// Plays the graph in topological order (Kahn): done[v] says whether node v can ever run.
std::vector<bool> runnable(const Graph& g) {
  auto n = boost::num_vertices(g);
  std::vector<int> pending(n, 0);
  for (auto [e, end] = boost::edges(g); e != end; ++e) ++pending[boost::target(*e, g)];
  std::vector<Vertex> ready;
  for (Vertex v = 0; v < n; ++v)
    if (pending[v] == 0) ready.push_back(v);
  std::vector<bool> done(n);
  while (!ready.empty()) {
    auto v = ready.back();
    ready.pop_back();
    done[v] = true;
    for (auto [e, end] = boost::out_edges(v, g); e != end; ++e)
      if (--pending[boost::target(*e, g)] == 0) ready.push_back(boost::target(*e, g));
  }
  return done;
}

[[noreturn]] void report_deadlock(const Schedule& s, const PassIndex& index, const std::vector<bool>& done,
                                  std::vector<int> cycle) {
  // cycle[i] must finish before cycle[i+1]; print it as "waits for", folding runs along one rank.
  auto same_rank_as = [&](std::size_t i, std::size_t j) { return index.rank_of(cycle[i]) == index.rank_of(cycle[j]); };
  std::vector<int> folded;
  for (std::size_t i = 0; i < cycle.size(); ++i) {
    std::size_t prev = (i + cycle.size() - 1) % cycle.size(), next = (i + 1) % cycle.size();
    if (cycle.size() <= 2 || !same_rank_as(prev, i) || !same_rank_as(i, next)) folded.push_back(cycle[i]);
  }
  cycle = std::move(folded);
  std::string message = "deadlock: the schedule would hang; these actions wait on each other in a cycle:";
  GridMarks marks;
  for (std::size_t i = cycle.size(); i-- > 0;) {
    int waiter = cycle[i];
    std::size_t j = (i + cycle.size() - 1) % cycle.size();
    bool same_rank = index.rank_of(cycle[j]) == index.rank_of(waiter);
    message += fmt::format("\n  {} {} {}", describe(s, index, waiter),
                           same_rank ? "runs after" : "waits for data from", describe(s, index, cycle[j]));
    marks.cells.insert({index.rank_of(waiter), index.step_of(waiter)});
  }
  message += "\nwhere each rank stops:";
  for (int r = 0; r < s.ranks; ++r) {
    int steps = static_cast<int>(s.programs[static_cast<std::size_t>(r)].size());
    int step = 0;
    while (step < steps && done[static_cast<std::size_t>(index.node_at(r, step))]) ++step;
    if (step == steps) continue;
    message += fmt::format("\n  rank {} at step {}, {}", r, step,
                           to_string(s.programs[static_cast<std::size_t>(r)][static_cast<std::size_t>(step)]));
    if (marks.step < 0 || step < marks.step) marks.step = step;
  }
  marks.context_rows = 6;
  // Appended in two steps: `"\n" + string` trips GCC 12's false -Wrestrict at -O3.
  message += '\n';
  message += format_grid(s, marks);
  throw Error(message);
}

// Whether every action can run: each rank advances through its program while the cross-rank passes its next
// action needs are done, and a blocked rank waits on the first missing one (a list per rank). The set it
// completes is the one Kahn's algorithm plays on the graph below, found without building the graph; only
// a deadlock builds the graph, to find a cycle to show. With `same_rank_order`, a pass that needs one of its
// own rank's passes not yet run (what check_rank_order() reports) also answers false, so one pass over the
// dependencies settles both checks for a valid schedule.
bool every_action_runs(const Schedule& s, const PassIndex& index, bool same_rank_order) {
  auto ranks = static_cast<std::size_t>(s.ranks);
  std::vector<std::size_t> pc(ranks, 0);
  // A pass is done once its rank's program counter has passed it; the rank of a pass is its stage's.
  auto done = [&](int node, int rank) { return node < index.node_at(rank, static_cast<int>(pc[static_cast<std::size_t>(rank)])); };
  // A blocked rank waits for one node of another rank: kept in that rank's list, looked at when it stops.
  std::vector<int> waiting_for(ranks, -1), first_waiter(ranks, -1), next_waiter(ranks, -1);
  std::vector<int> work;
  for (std::size_t r = ranks; r-- > 0;) work.push_back(static_cast<int>(r));
  Pass needs[2];
  while (!work.empty()) {
    int r = work.back();
    work.pop_back();
    auto ri = static_cast<std::size_t>(r);
    auto& program = s.programs[ri];
    while (pc[ri] < program.size()) {
      int blocked = -1, blocked_rank = -1;
      for (auto& pass : program[pc[ri]].passes()) {
        int n = producers(s, index, pass, needs);
        for (int j = 0; j < n && blocked < 0; ++j) {
          int v = index.node(needs[j]);
          int q = s.stage_to_rank[static_cast<std::size_t>(needs[j].stage)];
          if (v < 0 || done(v, q)) continue;
          if (q != r) {
            blocked = v;
            blocked_rank = q;
          } else if (same_rank_order) {
            return false;
          }
        }
        if (blocked >= 0) break;
      }
      if (blocked >= 0) {
        waiting_for[ri] = blocked;
        next_waiter[ri] = first_waiter[static_cast<std::size_t>(blocked_rank)];
        first_waiter[static_cast<std::size_t>(blocked_rank)] = r;
        break;
      }
      ++pc[ri];
    }
    // Wake the ranks waiting for what this one has now done.
    int* link = &first_waiter[ri];
    while (*link >= 0) {
      auto w = static_cast<std::size_t>(*link);
      if (done(waiting_for[w], r)) {
        work.push_back(*link);
        *link = next_waiter[w];
      } else {
        link = &next_waiter[w];
      }
    }
  }
  for (std::size_t r = 0; r < ranks; ++r)
    if (pc[r] < s.programs[r].size()) return false;
  return true;
}

void check_deadlock(const Schedule& s, const PassIndex& index) {
  if (every_action_runs(s, index, false)) return;
  // Edges: program order on each rank, and the cross-rank data dependencies (same-rank ones follow from
  // program order once check_rank_order has passed). A compressed sparse row graph keeps the DFS in cache.
  std::vector<std::pair<Vertex, Vertex>> edges;
  edges.reserve(static_cast<std::size_t>(index.nodes()) * 2);
  Pass needs[2];
  for (int u = 0; u < index.nodes(); ++u) {
    int r = index.rank_of(u), step = index.step_of(u);
    if (step > 0) edges.emplace_back(static_cast<Vertex>(u - 1), static_cast<Vertex>(u));
    for (auto& pass : s.programs[static_cast<std::size_t>(r)][static_cast<std::size_t>(step)].passes()) {
      int n = producers(s, index, pass, needs);
      for (int j = 0; j < n; ++j) {
        int v = index.node(needs[j]);
        if (v >= 0 && index.rank_of(v) != r) edges.emplace_back(static_cast<Vertex>(v), static_cast<Vertex>(u));
      }
    }
  }
  Graph g(boost::edges_are_unsorted_multi_pass, edges.begin(), edges.end(), static_cast<Vertex>(index.nodes()));
  auto done = runnable(g);
  if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) return;
  // A deadlock: find one cycle to show (depth-first search, back edge).
  std::vector<Vertex> parent(boost::num_vertices(g));
  std::vector<boost::default_color_type> colors(boost::num_vertices(g));
  std::optional<std::pair<Vertex, Vertex>> back;
  CycleFinder finder;
  finder.parent = &parent;
  finder.back = &back;
  boost::depth_first_search(
      g, boost::visitor(finder).color_map(boost::make_iterator_property_map(colors.begin(), boost::get(boost::vertex_index, g))));
  if (!back) throw Error("validate: nodes left unrun but no cycle found", Error::Kind::Internal);
  auto [from, to] = *back;  // `to` is an ancestor of `from` on the DFS tree
  std::vector<int> cycle;
  for (auto v = from; v != to; v = parent[v]) cycle.push_back(static_cast<int>(v));
  cycle.push_back(static_cast<int>(to));
  std::reverse(cycle.begin(), cycle.end());
  report_deadlock(s, index, done, std::move(cycle));
}

// The checks before the order of passes; the index they built.
PassIndex checked_structure(const Schedule& schedule) {
  check_shape(schedule);
  check_placement(schedule);
  PassIndex index(schedule);
  check_complete(schedule, index);
  return index;
}

}  // namespace

void validate_shape(const Schedule& schedule) { check_shape(schedule); }

void validate(const Schedule& schedule) {
  check_shape(schedule);
  // A compute-only schedule that plays through is sound: the walk checks all that follows as it goes.
  if (Play(schedule).run([](int, const Action&, const Play::Hop* const*) {})) return;
  validate_each_check(schedule);
}

void validate_each_check(const Schedule& schedule) {
  auto index = checked_structure(schedule);
  if (every_action_runs(schedule, index, true)) return;
  // Something is wrong: the checks one at a time, for their messages.
  check_rank_order(schedule, index);
  check_deadlock(schedule, index);
}

}  // namespace pipesim
