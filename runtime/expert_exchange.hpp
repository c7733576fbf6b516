// The expert-parallel round trip both MoE passes make (F: each token's row to its experts and their outputs
// back; I: the output gradients to the experts and the input gradients back): send every (token, slot) row
// to the EP rank owning the slot's expert, all-to-all, run each local expert on the rows it received,
// all-to-all the results back, and return them in (token, slot) order. Rows keep their (source, token,
// slot) order on every rank, and each row is one GEMM row (gemm keeps rows independent of their batch), so
// no result depends on which rows travelled together.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/op_log.hpp"
#include "runtime/workload.hpp"

namespace pipesim {

// Which rows each local expert processes and where they came from: learnt by the forward's dispatch (whose
// rows carry their expert id), reused by the backward's, whose rows travel bare in the same order.
struct ExpertRouting {
  std::vector<int> received;                            // rows from each EP rank
  std::vector<std::vector<std::pair<int, int>>> from;   // [local expert] -> (source EP rank, row in its buffer)
};

template <class T>
class ExpertExchange {
 public:
  // `context` prefixes error messages ("StageModel layers [0, 2)"). An empty exchange is the identity,
  // valid only with ep = 1 (else Error Internal).
  ExpertExchange(const WorkloadSpec& spec, AllToAll<T> exchange, std::string context);

  // The row shuffles and the two all-to-alls as operators of `log` (op_log.hpp); the experts' own operators
  // are the Compute's.
  void set_op_log(OpLog* log) { log_ = log; }

  int owner(int expert) const { return expert / local_experts_; }
  int first_expert() const { return first_expert_; }
  int local_experts() const { return local_experts_; }

  // Runs one local expert (index into this rank's experts) on its rows [n x width] -> its outputs [n x width].
  using Compute = std::function<std::vector<T>(int local_expert, std::vector<T> rows)>;
  // rows [slots x width] in (token, slot) order, expert[slot] the expert each goes to. With `learn`
  // (the forward) fills `routing`; otherwise sends in the order `routing` recorded. `what` names the pass
  // in errors ("MoE" / "MoE backward"). Called in lockstep by every EP rank.
  std::vector<T> round_trip(const std::vector<int>& expert, const std::vector<T>& rows, int width,
                            ExpertRouting& routing, bool learn, const Compute& compute, const std::string& what) const;

 private:
  std::vector<std::vector<T>> trade(std::vector<std::vector<T>> buffers, const std::string& what, char pass) const;

  int ep_;
  int first_expert_ = 0, local_experts_ = 0;  // this EP rank's experts: [first_expert_, + local_experts_)
  AllToAll<T> exchange_;
  std::string context_;
  OpLog* log_ = nullptr;
};

extern template class ExpertExchange<float>;
extern template class ExpertExchange<double>;

}  // namespace pipesim
