// The expert-parallel round trip (see expert_exchange.hpp).
#include "runtime/expert_exchange.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>

#include <fmt/format.h>

#include "common/error.hpp"
#include "kernels/cpu/ops.hpp"

namespace pipesim {

using std::size_t;

Dispatch plan_dispatch(const std::vector<int>& expert, int ep, int local_experts) {
  Dispatch d;
  d.sent.assign(size_t(ep), 0);
  for (int e : expert) {
    if (e < 0 || e >= ep * local_experts)
      throw Error(fmt::format("MoE dispatch: the router chose expert {} of {}", e, ep * local_experts),
                  Error::Kind::Internal);
    ++d.sent[size_t(e / local_experts)];
  }
  std::vector<int> next(size_t(ep), 0);
  for (int p = 1; p < ep; ++p) next[size_t(p)] = next[size_t(p - 1)] + d.sent[size_t(p - 1)];
  d.order.resize(expert.size());
  d.position.resize(expert.size());
  for (size_t slot = 0; slot < expert.size(); ++slot) {
    const int at = next[size_t(expert[slot] / local_experts)]++;
    d.order[size_t(at)] = int(slot);
    d.position[slot] = at;
  }
  return d;
}

ExpertRouting learn_routing(const std::vector<std::vector<int>>& ids, int first_expert, int local_experts,
                            const std::string& what) {
  ExpertRouting r;
  r.received.assign(ids.size(), 0);
  r.from.assign(size_t(local_experts), {});
  for (size_t src = 0; src < ids.size(); ++src) {
    r.received[src] = int(ids[src].size());
    for (size_t i = 0; i < ids[src].size(); ++i) {
      const int e = ids[src][i] - first_expert;
      if (e < 0 || e >= local_experts)
        throw Error(fmt::format("{}: EP rank {} sent a row for expert {}, not held here", what, src, ids[src][i]),
                    Error::Kind::Internal);
      r.from[size_t(e)].emplace_back(int(src), int(i));
    }
  }
  return r;
}

std::vector<int> expert_major_rows(const ExpertRouting& routing) {
  std::vector<int> offset(routing.received.size() + 1, 0);
  for (size_t src = 0; src < routing.received.size(); ++src) offset[src + 1] = offset[src] + routing.received[src];
  std::vector<int> index;
  index.reserve(size_t(offset.back()));
  for (const auto& from : routing.from)
    for (auto [src, at] : from) index.push_back(offset[size_t(src)] + at);
  return index;
}

std::vector<ExpertChunk> expert_chunks(const ExpertRouting& routing) {
  std::vector<ExpertChunk> chunks;
  int begin = 0;
  for (size_t e = 0; e < routing.from.size(); ++e)
    for (auto [src, at] : routing.from[e]) {
      (void)at;
      if (chunks.empty() || chunks.back().expert != int(e) || chunks.back().source != src)
        chunks.push_back({int(e), src, begin, 0});
      ++chunks.back().rows;
      ++begin;
    }
  return chunks;
}

template <class T>
std::vector<std::vector<T>> split_rows(const std::vector<T>& rows, const std::vector<int>& count, int width,
                                       const std::vector<int>* ids) {
  size_t rows_total = 0;
  for (int n : count) rows_total += size_t(n);
  if (rows.size() != rows_total * size_t(width) || (ids && ids->size() != rows_total))
    throw Error(fmt::format("MoE exchange: {} elements and {} ids for {} rows of {}", rows.size(),
                            ids ? ids->size() : 0, rows_total, width),
                Error::Kind::Internal);
  std::vector<std::vector<T>> out(count.size());
  size_t row = 0;
  for (size_t p = 0; p < count.size(); ++p) {
    const size_t n = size_t(count[p]);
    auto& b = out[p];
    b.reserve(n * size_t(width) + (ids ? n : 0));
    b.insert(b.end(), rows.begin() + std::ptrdiff_t(row * size_t(width)),
             rows.begin() + std::ptrdiff_t((row + n) * size_t(width)));
    if (ids)
      for (size_t i = row; i < row + n; ++i) b.push_back(T((*ids)[i]));
    row += n;
  }
  return out;
}

template <class T>
std::vector<T> join_rows(const std::vector<std::vector<T>>& buffers, int width, std::vector<int>& count,
                         std::vector<std::vector<int>>* ids, const std::string& what) {
  const size_t record = size_t(width) + (ids ? 1 : 0);
  if (!ids && count.size() != buffers.size())
    throw Error(fmt::format("{}: {} buffers for {} EP ranks", what, buffers.size(), count.size()), Error::Kind::Internal);
  if (ids) {
    count.assign(buffers.size(), 0);
    ids->assign(buffers.size(), {});
  }
  size_t total = 0;
  for (size_t p = 0; p < buffers.size(); ++p) {
    const auto& b = buffers[p];
    if (ids) {
      if (b.size() % record != 0)
        throw Error(fmt::format("{}: {} elements from EP rank {} are not whole rows", what, b.size(), p),
                    Error::Kind::Internal);
      count[p] = int(b.size() / record);
    } else if (b.size() != size_t(count[p]) * size_t(width)) {
      throw Error(fmt::format("{}: {} elements from EP rank {}, expected {} rows of {}", what, b.size(), p, count[p], width),
                  Error::Kind::Internal);
    }
    total += size_t(count[p]);
  }
  std::vector<T> rows;
  rows.reserve(total * size_t(width));
  for (size_t p = 0; p < buffers.size(); ++p) {
    const auto& b = buffers[p];
    const size_t n = size_t(count[p]), body = n * size_t(width);
    rows.insert(rows.end(), b.begin(), b.begin() + std::ptrdiff_t(body));
    if (!ids) continue;
    auto& mine = (*ids)[p];
    for (size_t i = 0; i < n; ++i) {
      const T id = b[body + i];
      if (!(id >= 0) || id >= T(1 << 24) || T(int(id)) != id)
        throw Error(fmt::format("{}: EP rank {} sent expert id {}", what, p, double(id)), Error::Kind::Internal);
      mine.push_back(int(id));
    }
  }
  return rows;
}

template <class T>
ExpertExchange<T>::ExpertExchange(const WorkloadSpec& spec, AllToAll<T> exchange, std::string context)
    : ep_(spec.ep), exchange_(std::move(exchange)), context_(std::move(context)) {
  if (!exchange_) {
    if (spec.ep > 1)
      throw Error(fmt::format("StageModel: ep = {} needs an all-to-all exchange", spec.ep), Error::Kind::Internal);
    exchange_ = [](std::vector<std::vector<T>> buffers) { return buffers; };
  }
  local_experts_ = spec.experts / spec.ep;
  first_expert_ = spec.ep_rank * local_experts_;
}

// All-to-all with its shape checked: one buffer from each EP rank.
template <class T>
std::vector<std::vector<T>> ExpertExchange<T>::trade(std::vector<std::vector<T>> buffers, const std::string& what,
                                                     char pass, bool pause_first) const {
  double sent = 0;  // to the other EP ranks: what the all-to-all microbenchmark's rate is per
  for (size_t p = 0; p < buffers.size(); ++p)
    if (int(p) != first_expert_ / std::max(local_experts_, 1)) sent += double(buffers[p].size()) * sizeof(T);
  if (pause_first) pause();  // before the operator: the other half of a pair may run here
  OpScope op(log_, "all_to_all", comm_work(pass, sent));
  auto got = exchange_(std::move(buffers));
  if (got.size() != size_t(ep_))
    throw Error(fmt::format("{}: {} all-to-all returned {} buffers for ep = {}", context_, what, got.size(), ep_),
                Error::Kind::Internal);
  return got;
}

// Rows gathered by `index` into a new tensor: an operator of the log.
template <class T>
static std::vector<T> gathered(const std::vector<T>& rows, const std::vector<int>& index, int width, OpLog* log,
                               const char* name, char pass) {
  std::vector<T> out(index.size() * size_t(width));
  OpScope op(log, name, memory_work(pass, 2.0 * double(out.size()) * sizeof(T)));
  kernels::gather_rows(int(index.size()), width, index.data(), rows.data(), out.data());
  return out;
}

template <class T>
std::vector<T> ExpertExchange<T>::round_trip(const std::vector<int>& expert, const std::vector<T>& rows, int width,
                                             ExpertRouting& routing, bool learn, const Compute& compute,
                                             const std::string& what) const {
  const size_t row = size_t(width);
  const char pass = learn ? 'F' : 'I';
  const std::string named = context_ + ": " + what;  // errors name the stage

  // Dispatch: each slot's row to its expert's owner, in (token, slot) order; the forward's carry their ids.
  auto plan = plan_dispatch(expert, ep_, local_experts_);
  std::vector<int> ids;
  if (learn)
    for (int slot : plan.order) ids.push_back(expert[size_t(slot)]);
  auto send = split_rows(gathered(rows, plan.order, width, log_, "moe_dispatch_pack", pass), plan.sent, width,
                         learn ? &ids : nullptr);
  auto received = trade(std::move(send), what + " dispatch", pass);
  std::vector<std::vector<int>> received_ids;
  auto arrived = join_rows(received, width, routing.received, learn ? &received_ids : nullptr, named + " dispatch");
  if (learn) routing = learn_routing(received_ids, first_expert_, local_experts_, named + " dispatch");

  // Each local expert's rows, in (source EP rank, token, slot) order; then each result row back to where its
  // input came from.
  const auto index = expert_major_rows(routing);
  auto input = gathered(arrived, index, width, log_, "moe_group", pass);
  std::vector<T> back(arrived.size());
  size_t begin = 0;
  for (int i = 0; i < local_experts_; ++i) {
    const size_t n = routing.from[size_t(i)].size();
    if (n == 0) continue;
    auto out = compute(i, std::vector<T>(input.begin() + std::ptrdiff_t(begin * row),
                                         input.begin() + std::ptrdiff_t((begin + n) * row)));
    if (out.size() != n * row)
      throw Error(fmt::format("{}: expert {} returned {} elements for {} rows", named, first_expert_ + i, out.size(), n),
                  Error::Kind::Internal);
    OpScope copy(log_, "moe_return_pack", memory_work(pass, 2.0 * double(out.size()) * sizeof(T)));
    for (size_t q = 0; q < n; ++q) std::copy_n(&out[q * row], row, &back[size_t(index[begin + q]) * row]);
    begin += n;
  }
  auto returned = trade(split_rows(back, routing.received, width, nullptr), what + " combine", pass);

  // Every slot's result, in (token, slot) order.
  auto joined = join_rows(returned, width, plan.sent, nullptr, named + " combine");
  return gathered(joined, plan.position, width, log_, "moe_unpack", pass);
}

#define PIPESIM_EXCHANGE_INSTANTIATE(T)                                                                          \
  template class ExpertExchange<T>;                                                                              \
  template std::vector<std::vector<T>> split_rows<T>(const std::vector<T>&, const std::vector<int>&, int,        \
                                                     const std::vector<int>*);                                   \
  template std::vector<T> join_rows<T>(const std::vector<std::vector<T>>&, int, std::vector<int>&,               \
                                       std::vector<std::vector<int>>*, const std::string&);
PIPESIM_EXCHANGE_INSTANTIATE(float)
PIPESIM_EXCHANGE_INSTANTIATE(double)
#undef PIPESIM_EXCHANGE_INSTANTIATE

}  // namespace pipesim
