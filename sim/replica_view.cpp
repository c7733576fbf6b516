// The replica's questions to the cluster, logged (see replica_view.hpp).
#include "sim/replica_view.hpp"

#include <algorithm>

namespace pipesim {

ReplicaView::ReplicaView(const Topology& topology, const ModelSpec& model, const ResolvedPlan& plan, int dp_rank,
                         const std::vector<double>& gpu_slowdown)
    : topology_(topology), model_(model), plan_(plan), dp_rank_(dp_rank),
      slowdown_(gpu_slowdown.empty() ? nullptr : &gpu_slowdown) {}

CommTime ReplicaView::all_to_all(int pp_rank) {
  return [this, pp_rank](const char*, double bytes) { return static_cast<double>(all_to_all_ns(pp_rank, bytes)); };
}

std::int64_t ReplicaView::tp_collective_ns(Collective kind, int pp_rank, double bytes) {
  auto k = kind == Collective::ReduceScatter ? ReduceScatter : kind == Collective::AllGather ? AllGather : AllReduce;
  return static_cast<std::int64_t>(ask({k, pp_rank, 0, bytes})[0]);
}

P2pLink ReplicaView::link(int from_pp_rank, int to_pp_rank, double bytes) {
  auto a = ask({Link, from_pp_rank, to_pp_rank, bytes});
  return {a[0], a[1]};
}

ReplicaView::Answer ReplicaView::ask(const Question& q) {
  auto it = known_.find(q);
  if (it == known_.end()) it = known_.emplace(q, answer(q)).first;
  return it->second;
}

ReplicaView::Answer ReplicaView::answer(const Question& q) const {
  auto& p = plan_.plan;
  switch (q.kind) {
    case AllToAll: {
      int max_nodes = model_.moe ? model_.moe->max_nodes_per_token : 0, k = model_.moe ? model_.moe->experts_per_token : 0;
      return {static_cast<double>(topology_.all_to_all_ns(plan_.ep_group(q.a, dp_rank_), q.bytes, max_nodes, k)), 0};
    }
    case ReduceScatter:
    case AllGather:
    case AllReduce: {
      std::vector<int> group;
      for (int t = 0; t < p.tp; ++t) group.push_back(plan_.gpu(q.a, dp_rank_, t));
      auto ns = q.kind == ReduceScatter ? topology_.reduce_scatter_ns(group, q.bytes)
                : q.kind == AllGather   ? topology_.all_gather_ns(group, q.bytes)
                                        : topology_.all_reduce_ns(group, q.bytes);
      return {static_cast<double>(ns), 0};
    }
    case Link: {
      auto l = p2p_link(topology_, topology_.spec().profile, plan_.gpu(q.a, dp_rank_), plan_.gpu(q.b, dp_rank_), q.bytes);
      return {l.latency_ns, l.bytes_per_ns};
    }
    case Slowdown: return {(*slowdown_)[static_cast<std::size_t>(plan_.gpu(q.a, dp_rank_))], 0};
    case EpSlowdown: {
      double most = 0;
      for (int g : plan_.ep_group(q.a, dp_rank_)) most = std::max(most, (*slowdown_)[static_cast<std::size_t>(g)]);
      return {most, 0};
    }
  }
  return {};
}

bool ReplicaView::answers_like_me(ReplicaView& other) const {
  if (has_slowdowns() != other.has_slowdowns()) return false;
  for (auto& [q, a] : known_)
    if (other.ask(q) != a) return false;
  return true;
}

}  // namespace pipesim
