// What one pipeline replica's costs take from the cluster. Every topology answer and GPU slowdown that
// model_costs() asks for goes through a ReplicaView, which logs the questions and their answers. Costs are a
// function of those answers and of the model, plan and profile, so a replica that answers a logged list of
// questions exactly as another did has exactly its costs: a --full step prices and simulates each class of
// replicas once (sim/step.cpp), not each of the 128 replicas of a 2048-GPU DeepSeek-V3 plan.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "models/model.hpp"
#include "sim/op_time.hpp"
#include "sim/plan.hpp"
#include "topologies/topology.hpp"

namespace pipesim {

class ReplicaView {
 public:
  // Refers to every argument (gpu_slowdown: one per GPU, or empty for none), which must outlive it.
  ReplicaView(const Topology& topology, const ModelSpec& model, const ResolvedPlan& plan, int dp_rank,
              const std::vector<double>& gpu_slowdown);

  const Topology& topology() const { return topology_; }
  const ResolvedPlan& plan() const { return plan_; }
  int dp_rank() const { return dp_rank_; }
  bool has_slowdowns() const { return slowdown_ != nullptr; }

  // The model's all-to-all of `bytes` per GPU over the EP group of (pp_rank, this replica), on the topology.
  std::int64_t all_to_all_ns(int pp_rank, double bytes) { return static_cast<std::int64_t>(ask({AllToAll, pp_rank, 0, bytes})[0]); }
  CommTime all_to_all(int pp_rank);  // the same as a CommTime (refers to this view)
  // A ring collective over the TP group of (pp_rank, this replica).
  enum class Collective { ReduceScatter, AllGather, AllReduce };
  std::int64_t tp_collective_ns(Collective kind, int pp_rank, double bytes);
  // The pipeline link between this replica's GPUs at two pp ranks (op_time.hpp's p2p_link).
  P2pLink link(int from_pp_rank, int to_pp_rank, double bytes);
  // The slowdown of this replica's GPU at pp_rank, and the largest in its EP group.
  double gpu_slowdown(int pp_rank) { return ask({Slowdown, pp_rank, 0, 0})[0]; }
  double ep_group_slowdown(int pp_rank) { return ask({EpSlowdown, pp_rank, 0, 0})[0]; }

  // Whether `other` answers every question this view was asked as this view did (asking it them).
  bool answers_like_me(ReplicaView& other) const;

 private:
  enum Kind { AllToAll, ReduceScatter, AllGather, AllReduce, Link, Slowdown, EpSlowdown };
  struct Question {
    Kind kind;
    int a, b;
    double bytes;
    friend auto operator<=>(const Question&, const Question&) = default;
  };
  using Answer = std::array<double, 2>;
  Answer ask(const Question& q);  // remembered: what was asked is what another replica must answer alike
  Answer answer(const Question& q) const;

  const Topology& topology_;
  const ModelSpec& model_;
  const ResolvedPlan& plan_;
  int dp_rank_;
  const std::vector<double>* slowdown_;  // [gpu], or null for none
  // Every question asked (model_costs() asks in an order fixed by the answers it got, so a replica that
  // answers all of them alike would be asked the same ones), and its answer.
  std::map<Question, Answer> known_;
};

}  // namespace pipesim
