// Executor implementation (see executor.hpp). Buffers are keyed by (direction, stage, micro-batch):
// direction 0 carries a forward activation into a stage, direction 1 a gradient into a stage. A message's
// tag is that key, so every transfer of a step has its own tag.
#include "runtime/executor.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <tuple>

#include <fmt/format.h>

#include "common/error.hpp"
#include "models/layer_split.hpp"
#include "runtime/pair_runner.hpp"
#include "schedules/dependencies.hpp"

namespace pipesim {

std::pair<int, int> stage_layers(const Schedule& schedule, int stage, int layers) {
  int length = schedule.route_length(stage), position = schedule.position(stage);
  if (layers < length)
    throw Error(fmt::format("the model's {} layers do not split over {} pipeline stages (at least one layer each)",
                            layers, length));
  auto counts = even_layer_split(layers, length);
  int first = 0;
  for (int k = 0; k < position; ++k) first += counts[static_cast<std::size_t>(k)];
  return {first, counts[static_cast<std::size_t>(position)]};
}

template <class T>
struct Executor<T>::State {
  using Key = std::tuple<int, int, int>;  // direction, stage, micro-batch
  struct Send {
    Comm::Request request;
    Buffer<T> data;
    Span span;
  };

  const Schedule& s;
  PassIndex index;  // the data dependencies, as the validator and the engine read them
  WorkloadSpec spec;
  Comm& comm;
  int rank;     // pipeline rank
  int replica;  // which data-parallel replica of the pipeline (the EP rank inside the expert group)
  std::unique_ptr<Comm> experts;  // the EP group: the ranks holding the same stages in every replica
  std::unique_ptr<PairRunner> pairs;  // overlapped pairs' halves taking turns at the all-to-alls (--overlap-pairs)
  std::map<int, std::unique_ptr<StageCompute<T>>> models;  // the stages this rank holds
  std::map<Key, Buffer<T>> inbox, outbox;
  std::map<Key, std::pair<Comm::Request, std::size_t>> pending;  // RECV posted: request, span index
  std::deque<Send> sends;
  std::vector<Span> spans;
  std::chrono::steady_clock::time_point origin;
  std::size_t message_elements;

  State(const Schedule& schedule, const WorkloadSpec& w, Comm& c, Device<T>& device, bool overlap_pairs)
      : s(schedule), index(schedule), spec(w), comm(c), rank(c.rank() % schedule.ranks), replica(c.rank() / schedule.ranks) {
    if (comm.size() != s.ranks * spec.ep)
      throw Error(fmt::format("the schedule has {} ranks and --ep is {}, so {} processes are needed, but {} were started; "
                              "run mpirun -n {}",
                              s.ranks, spec.ep, s.ranks * spec.ep, comm.size(), s.ranks * spec.ep));
    spec.ep_rank = replica;
    if (spec.ep > 1) experts = comm.split(rank, replica);
    // Without an EP group no half pauses, so a second thread would only run the halves one after the other.
    bool has_pairs = false;
    for (auto& a : s.programs[static_cast<std::size_t>(rank)]) has_pairs = has_pairs || a.op == Op::OverlapFB;
    if (overlap_pairs && experts && has_pairs) {
      if (!experts->other_threads())
        throw Error("--overlap-pairs: this Comm does not let a second thread call it", Error::Kind::Internal);
      pairs = std::make_unique<PairRunner>([&device] { device.adopt_thread(); }, [&device] { device.release_thread(); });
    }
    for (int st = 0; st < s.stages; ++st) stage_layers(s, st, spec.layers);  // refused alike on every rank
    for (int st = 0; st < s.stages; ++st) {
      if (rank_of(st) != rank) continue;
      auto [first, count] = stage_layers(s, st, spec.layers);
      int k = s.position(st);
      models[st] = device.make_stage(spec, first, count, k == 0, k + 1 == s.route_length(st), exchange());
    }
    message_elements = static_cast<std::size_t>(spec.micro_batch) * static_cast<std::size_t>(spec.seq) *
                       static_cast<std::size_t>(spec.hidden);
    if (static_cast<std::int64_t>(tag({1, s.stages - 1, s.microbatches - 1})) > comm.max_tag())
      throw Error(fmt::format("{} stages x {} micro-batches need more MPI tags than this MPI offers ({})", s.stages,
                              s.microbatches, comm.max_tag()));
  }

  // The MoE layers' all-to-all over the EP group, in elements of T; an overlapped pair's half pauses before
  // each (PairRunner).
  AllToAll<T> exchange() {
    if (!experts) return {};
    auto pause = [this] {
      if (pairs) pairs->pause();
    };
    auto trade = [this](std::vector<std::vector<T>> send) {
      std::vector<std::vector<char>> bytes(send.size());
      for (std::size_t p = 0; p < send.size(); ++p) {
        auto* data = reinterpret_cast<const char*>(send[p].data());
        bytes[p].assign(data, data + send[p].size() * sizeof(T));
      }
      auto received = experts->all_to_all_v(bytes);
      std::vector<std::vector<T>> out(received.size());
      for (std::size_t p = 0; p < received.size(); ++p) {
        out[p].resize(received[p].size() / sizeof(T));
        std::memcpy(out[p].data(), received[p].data(), received[p].size());
      }
      return out;
    };
    return {trade, pause};
  }
  // A micro-batch's id in the data: each replica trains on its own micro-batches.
  int data_id(int mb) const { return replica * s.microbatches + mb; }
  int world_rank(int pipeline_rank) const { return replica * s.ranks + pipeline_rank; }

  int tag(const Key& key) const {
    auto [direction, stage, mb] = key;
    return message_tag(direction, stage, mb, s.stages);
  }
  std::int64_t now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - origin).count();
  }
  int rank_of(int stage) const { return s.stage_to_rank[static_cast<std::size_t>(stage)]; }

  // The input a pass consumes: a posted receive (waited on now) or a hand-off on this rank.
  Buffer<T> take(const Key& key) {
    if (auto it = pending.find(key); it != pending.end()) {
      auto& span = spans[it->second.second];
      try {
        comm.wait(it->second.first);
      } catch (const Error& e) {  // name the action and the peer the rank was waiting for
        throw Error(fmt::format("{} from rank {}: {}", to_string(span.action), span.peer, e.what()), e.kind());
      }
      span.end_ns = now();
      pending.erase(it);
    }
    auto node = inbox.extract(key);
    if (node.empty())
      throw Error(fmt::format("runtime: rank {} has no input for stage {} micro-batch {} ({})", rank, std::get<1>(key),
                              std::get<2>(key), std::get<0>(key) ? "gradient" : "activation"),
                  Error::Kind::Internal);
    return std::move(node.mapped());
  }
  // Where a pass's output goes: the next stage on this rank directly, or the outbox for a SEND.
  void give(int direction, int from_stage, int to_stage, int mb, Buffer<T> data) {
    if (to_stage < 0) return;
    if (rank_of(to_stage) == rank)
      inbox[{direction, to_stage, mb}] = std::move(data);
    else
      outbox[{direction, from_stage, mb}] = std::move(data);
  }

  // The input a pass consumes from a neighbouring stage (waited on now; empty at a route's end): whatever
  // producers() names besides the pass's own stage (a RECV here, or the neighbour's pass on this rank)
  // has left it in the inbox under (direction, this stage, micro-batch).
  Buffer<T> input(const Pass& p) {
    Pass needs[2];
    int n = producers(s, index, p, needs);
    for (int j = 0; j < n; ++j) {
      bool from_neighbour = needs[j].stage != p.stage || needs[j].op == Op::RecvF || needs[j].op == Op::RecvB;
      if (from_neighbour) return take({p.op == Op::F ? 0 : 1, p.stage, p.microbatch});
    }
    return {};
  }

  void compute(const Pass& p, Buffer<T> in, std::map<int, T>& losses) {
    auto& model = *models.at(p.stage);
    int mb = p.microbatch, id = data_id(mb);
    switch (p.op) {
      case Op::F: {
        auto out = model.forward(id, in);
        int next = s.stage_after(p.stage, mb);
        if (next < 0) losses[id] = model.loss(id);
        give(0, p.stage, next, mb, std::move(out));
        break;
      }
      case Op::I:
      case Op::B: {
        auto input_grad = model.backward_input(id, in);
        if (p.op == Op::B) model.backward_weight(id);
        give(1, p.stage, s.stage_before(p.stage, mb), mb, std::move(input_grad));
        break;
      }
      case Op::W: model.backward_weight(id); break;
      default: break;
    }
  }

  void send(const Action& a) {
    int direction = a.op == Op::SendF ? 0 : 1;
    int to = direction == 0 ? s.stage_after(a.stage(), a.microbatch()) : s.stage_before(a.stage(), a.microbatch());
    auto node = outbox.extract({direction, a.stage(), a.microbatch()});
    if (node.empty()) throw Error(fmt::format("runtime: nothing to send for {}", to_string(a)), Error::Kind::Internal);
    Key key{direction, to, a.microbatch()};
    Send out{0, std::move(node.mapped()), {}};
    auto t = now();
    out.request = comm.isend(world_rank(rank_of(to)), tag(key), out.data.data(), out.data.bytes());
    out.span = {rank, Stream::P2P, a, t, t, static_cast<std::int64_t>(out.data.bytes()), rank_of(to), tag(key)};
    sends.push_back(std::move(out));
  }

  void receive(const Action& a) {
    int direction = a.op == Op::RecvF ? 0 : 1;
    int from = direction == 0 ? s.stage_before(a.stage(), a.microbatch()) : s.stage_after(a.stage(), a.microbatch());
    Key key{direction, a.stage(), a.microbatch()};
    auto& buffer = inbox[key] = models.at(a.stage())->allocate(message_elements);
    auto t = now();
    auto request = comm.irecv(world_rank(rank_of(from)), tag(key), buffer.data(), buffer.bytes());
    spans.push_back({rank, Stream::Compute, a, t, t, 0, rank_of(from), tag(key)});
    pending[key] = {request, spans.size() - 1};
  }

  // Records sends that have completed; with `all`, waits for the rest.
  void finish_sends(bool all) {
    for (auto it = sends.begin(); it != sends.end();) {
      if (all) {
        try {
          comm.wait(it->request);
        } catch (const Error& e) {
          throw Error(fmt::format("{} to rank {}: {}", to_string(it->span.action), it->span.peer, e.what()), e.kind());
        }
      }
      if (all || comm.test(it->request)) {
        it->span.end_ns = now();
        spans.push_back(it->span);
        it = sends.erase(it);
      } else {
        ++it;
      }
    }
  }
};

template <class T>
Executor<T>::Executor(const Schedule& lowered, const WorkloadSpec& spec, Comm& comm, Device<T>& device,
                      bool overlap_pairs)
    : state_(std::make_unique<State>(lowered, spec, comm, device, overlap_pairs)) {}

template <class T>
Executor<T>::~Executor() = default;

template <class T>
std::vector<Span> Executor<T>::run_step(std::chrono::steady_clock::time_point origin) {
  auto& st = *state_;
  st.origin = origin;
  st.spans.clear();
  losses_.clear();
  for (auto& action : st.s.programs[static_cast<std::size_t>(st.rank)]) {
    switch (action.op) {
      case Op::SendF:
      case Op::SendB: st.send(action); break;
      case Op::RecvF:
      case Op::RecvB: st.receive(action); break;
      default: {
        // A pass starts once its inputs are here: waiting shows in the RECV's span, not in the pass's (an
        // overlapped pair needs both halves' inputs before it starts).
        bool pair = action.op == Op::OverlapFB;
        auto first = st.input(action.pass[0]);
        auto second = pair ? st.input(action.pass[1]) : Buffer<T>{};
        auto start = st.now();
        if (pair && st.pairs) {  // transfers progress after the pair: the halves hand over only to each other
          st.pairs->run([&] { st.compute(action.pass[0], std::move(first), losses_); },
                        [&] { st.compute(action.pass[1], std::move(second), losses_); });
        } else {
          st.compute(action.pass[0], std::move(first), losses_);
          if (pair) {
            st.comm.progress();  // let the transfers move between the halves
            st.finish_sends(false);
            st.compute(action.pass[1], std::move(second), losses_);
          }
        }
        for (auto& pass : action.passes()) st.models.at(pass.stage)->synchronize();  // the span ends with the work
        st.spans.push_back({st.rank, Stream::Compute, action, start, st.now(), 0, -1, -1});
        st.finish_sends(false);
      }
    }
  }
  st.finish_sends(true);
  if (!st.inbox.empty() || !st.outbox.empty() || !st.pending.empty())
    throw Error(fmt::format("runtime: rank {} ended the step with {} unused inputs and {} unsent outputs", st.rank,
                            st.inbox.size(), st.outbox.size()),
                Error::Kind::Internal);
  std::stable_sort(st.spans.begin(), st.spans.end(), [](const Span& a, const Span& b) {
    return std::tie(a.stream, a.start_ns) < std::tie(b.stream, b.start_ns);
  });
  return st.spans;
}

template <class T>
std::map<std::string, std::vector<double>> Executor<T>::gradients() {
  auto& st = *state_;
  struct Chunk {
    std::vector<std::pair<std::string, std::size_t>> names;
    std::vector<double> mine, theirs;
    Comm::Request recv = -1, send = -1;
  };
  std::vector<Chunk> chunks;
  for (auto& [stage, model] : st.models) {
    Chunk c;
    for (auto& [name, values] : model->gradients()) {
      c.names.emplace_back(name, values.size());
      c.mine.insert(c.mine.end(), values.begin(), values.end());
    }
    // DualPipe: the same chunk on the other route's stage, on another rank, holds the second copy. Post
    // every exchange before waiting on any, so the two ranks' orders cannot block each other.
    auto layers = stage_layers(st.s, stage, st.spec.layers);
    for (int other = 0; other < st.s.stages; ++other)
      if (other != stage && stage_layers(st.s, other, st.spec.layers) == layers && st.rank_of(other) != st.rank) {
        int tag = static_cast<int>(std::min<std::int64_t>(st.comm.max_tag(), 1 << 20)) - 1 - layers.first;
        c.theirs.resize(c.mine.size());
        c.recv = st.comm.irecv(st.world_rank(st.rank_of(other)), tag, c.theirs.data(), c.theirs.size() * sizeof(double));
        c.send = st.comm.isend(st.world_rank(st.rank_of(other)), tag, c.mine.data(), c.mine.size() * sizeof(double));
      }
    chunks.push_back(std::move(c));
  }
  std::map<std::string, std::vector<double>> out;
  for (auto& c : chunks) {
    if (c.recv >= 0) {  // both ranks end with a + b
      st.comm.wait(c.recv);
      st.comm.wait(c.send);
      for (std::size_t i = 0; i < c.mine.size(); ++i) c.mine[i] += c.theirs[i];
    }
    std::size_t at = 0;
    for (auto& [name, size] : c.names) {
      out[name].assign(c.mine.begin() + static_cast<long>(at), c.mine.begin() + static_cast<long>(at + size));
      at += size;
    }
  }
  // Data parallel: every replica summed its own micro-batches; all-reduce what the replicas share (the
  // routed experts are held once in the EP group and already saw every token routed to them).
  if (st.experts)
    for (auto& [name, values] : out)
      if (name.find(".expert") == std::string::npos) st.experts->all_reduce_sum(values.data(), values.size());
  return out;
}

template <class T>
void Executor<T>::zero_gradients() {
  for (auto& [stage, model] : state_->models) model->zero_gradients();
}

template class Executor<double>;
template class Executor<float>;

}  // namespace pipesim
