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

// The index plans of a round trip, which the CPU stage and the CUDA stage (runtime/device_moe.hpp) both
// follow, so the two move the same rows in the same order.
// Where each (token, slot) row goes: to the EP rank owning its expert, each rank's rows in (token, slot) order.
struct Dispatch {
  std::vector<int> sent;      // rows to each EP rank
  std::vector<int> order;     // the slot of each row sent, EP rank after EP rank
  std::vector<int> position;  // position[slot]: where the slot's row is in `order`
};
Dispatch plan_dispatch(const std::vector<int>& expert, int ep, int local_experts);
// From the expert id of every row each EP rank sent (`ids[source]`, in its order): who sends what to which
// local expert. Throws Error naming `what` for an id this rank does not hold.
ExpertRouting learn_routing(const std::vector<std::vector<int>>& ids, int first_expert, int local_experts,
                            const std::string& what);
// Row q of the local experts' input (expert after expert, each's rows in (source, row) order) is row index[q]
// of the received rows laid end to end, source after source.
std::vector<int> expert_major_rows(const ExpertRouting& routing);
// [begin, begin + rows) of that input for each (local expert, source) with rows: the GEMMs of the forward
// and input backward run per chunk, so each has the shape it has in the single-process reference, where one
// source's rows reach each expert (cuBLAS may pick another algorithm, and other bits, for another shape).
struct ExpertChunk {
  int expert = 0, source = 0, begin = 0, rows = 0;
};
std::vector<ExpertChunk> expert_chunks(const ExpertRouting& routing);

// The wire format: one buffer per EP rank holding `count[p]` rows of `width` taken in order from `rows`
// (rank after rank), then, with `ids`, one id per row (as T: expert ids are small integers, exact in float).
template <class T>
std::vector<std::vector<T>> split_rows(const std::vector<T>& rows, const std::vector<int>& count, int width,
                                       const std::vector<int>* ids);
// The reverse, rows laid end to end. Without `ids`, buffer p must hold count[p] rows; with it, each buffer's
// row count is read from its size, written to count, and its ids to (*ids)[p]. Throws Error naming `what`
// on a buffer that does not hold whole rows or holds the wrong count.
template <class T>
std::vector<T> join_rows(const std::vector<std::vector<T>>& buffers, int width, std::vector<int>& count,
                         std::vector<std::vector<int>>* ids, const std::string& what);

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
  int ep() const { return ep_; }
  const std::string& context() const { return context_; }
  int first_expert() const { return first_expert_; }
  int local_experts() const { return local_experts_; }

  // The all-to-all: one buffer to each EP rank, one back from each; an operator of the log (kind comm, the
  // bytes sent to the other ranks). `what` names the exchange in errors, `pass` is 'F' or 'I'. With `pause_first`,
  // first lets the other half of an overlapped pair run (AllToAll::pause).
  std::vector<std::vector<T>> trade(std::vector<std::vector<T>> buffers, const std::string& what, char pass,
                                    bool pause_first = true) const;
  // The pause alone, for a caller with more places to give way (a GPU stage before it waits on its stream).
  void pause() const {
    if (exchange_.pause) exchange_.pause();
  }

  // Runs one local expert (index into this rank's experts) on its rows [n x width] -> its outputs [n x width].
  using Compute = std::function<std::vector<T>(int local_expert, std::vector<T> rows)>;
  // rows [slots x width] in (token, slot) order, expert[slot] the expert each goes to. With `learn`
  // (the forward) fills `routing`; otherwise sends in the order `routing` recorded. `what` names the pass
  // in errors ("MoE" / "MoE backward"). Called in lockstep by every EP rank.
  std::vector<T> round_trip(const std::vector<int>& expert, const std::vector<T>& rows, int width,
                            ExpertRouting& routing, bool learn, const Compute& compute, const std::string& what) const;

 private:
  int ep_;
  int first_expert_ = 0, local_experts_ = 0;  // this EP rank's experts: [first_expert_, + local_experts_)
  AllToAll<T> exchange_;
  std::string context_;
  OpLog* log_ = nullptr;
};

extern template class ExpertExchange<float>;
extern template class ExpertExchange<double>;

}  // namespace pipesim
