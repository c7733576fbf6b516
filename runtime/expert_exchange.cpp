// The expert-parallel round trip (see expert_exchange.hpp).
#include "runtime/expert_exchange.hpp"

#include <algorithm>
#include <cstddef>
#include <optional>

#include <fmt/format.h>

#include "common/error.hpp"

namespace pipesim {

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
                                                     char pass) const {
  double sent = 0;  // to the other EP ranks: what the all-to-all microbenchmark's rate is per
  for (std::size_t p = 0; p < buffers.size(); ++p)
    if (int(p) != first_expert_ / std::max(local_experts_, 1)) sent += double(buffers[p].size()) * sizeof(T);
  OpScope op(log_, "all_to_all", comm_work(pass, sent));
  auto got = exchange_(std::move(buffers));
  if (got.size() != std::size_t(ep_))
    throw Error(fmt::format("{}: {} all-to-all returned {} buffers for ep = {}", context_, what, got.size(), ep_),
                Error::Kind::Internal);
  return got;
}

template <class T>
std::vector<T> ExpertExchange<T>::round_trip(const std::vector<int>& expert, const std::vector<T>& rows, int width,
                                             ExpertRouting& routing, bool learn, const Compute& compute,
                                             const std::string& what) const {
  using std::size_t;
  const size_t row = size_t(width), slots = expert.size(), P = size_t(ep_);
  const size_t record = learn ? row + 1 : row;  // the forward's rows carry their expert id first

  // Dispatch: each slot's row to its expert's owner, in (token, slot) order.
  const char pass = learn ? 'F' : 'I';
  const double element = sizeof(T);
  std::vector<std::vector<T>> send(P);
  std::vector<size_t> sent(P, 0);
  std::optional<OpScope> pack(std::in_place, log_, "moe_dispatch_pack", memory_work(pass, 2.0 * slots * record * element));
  for (size_t slot = 0; slot < slots; ++slot) {
    const int e = expert[slot];
    auto& b = send[size_t(owner(e))];
    if (learn) b.push_back(T(e));
    b.insert(b.end(), rows.begin() + std::ptrdiff_t(slot * row), rows.begin() + std::ptrdiff_t((slot + 1) * row));
    ++sent[size_t(owner(e))];
  }
  pack.reset();
  auto received = trade(std::move(send), what + " dispatch", pass);
  double arrived = 0;
  for (auto& b : received) arrived += double(b.size());
  std::optional<OpScope> group(std::in_place, log_, "moe_group", memory_work(pass, 2.0 * arrived * element));

  // Each local expert's rows, grouped in the order (source EP rank, token, slot).
  std::vector<std::vector<T>> input(static_cast<size_t>(local_experts_));
  if (learn) {
    routing.received.assign(P, 0);
    routing.from.assign(size_t(local_experts_), {});
  }
  for (size_t src = 0; src < P; ++src) {
    const auto& b = received[src];
    if (!learn) {
      if (b.size() != size_t(routing.received[src]) * row)
        throw Error(fmt::format("{} dispatch: EP rank {} sent {} elements for the {} rows of its forward", what, src,
                                b.size(), routing.received[src]),
                    Error::Kind::Internal);
      continue;
    }
    if (b.size() % record != 0)
      throw Error(fmt::format("{} dispatch: {} elements from EP rank {} are not whole rows", what, b.size(), src),
                  Error::Kind::Internal);
    routing.received[src] = int(b.size() / record);
    for (int i = 0; i < routing.received[src]; ++i) {
      const T* rec = &b[size_t(i) * record];
      const int e = int(rec[0]) - first_expert_;
      if (e < 0 || e >= local_experts_ || T(e + first_expert_) != rec[0])
        throw Error(fmt::format("{} dispatch: EP rank {} sent a row for expert {}, not held here", what, src,
                                double(rec[0])),
                    Error::Kind::Internal);
      routing.from[size_t(e)].emplace_back(int(src), i);
      input[size_t(e)].insert(input[size_t(e)].end(), rec + 1, rec + 1 + row);
    }
  }
  if (!learn)
    for (int i = 0; i < local_experts_; ++i) {
      auto& in = input[size_t(i)];
      in.resize(routing.from[size_t(i)].size() * row);
      for (size_t q = 0; q < routing.from[size_t(i)].size(); ++q) {
        auto [src, at] = routing.from[size_t(i)][q];
        std::copy_n(&received[size_t(src)][size_t(at) * row], row, &in[q * row]);
      }
    }

  group.reset();
  // Experts, then each result row back to where its input came from.
  std::vector<std::vector<T>> back(P);
  for (size_t src = 0; src < P; ++src) back[src].resize(size_t(routing.received[src]) * row);
  for (int i = 0; i < local_experts_; ++i) {
    const auto& from = routing.from[size_t(i)];
    if (from.empty()) continue;
    auto out = compute(i, std::move(input[size_t(i)]));
    if (out.size() != from.size() * row)
      throw Error(fmt::format("{}: expert {} returned {} elements for {} rows", what, first_expert_ + i, out.size(),
                              from.size()),
                  Error::Kind::Internal);
    OpScope copy(log_, "moe_return_pack", memory_work(pass, 2.0 * from.size() * row * element));
    for (size_t q = 0; q < from.size(); ++q) {
      auto [src, at] = from[q];
      std::copy_n(&out[q * row], row, &back[size_t(src)][size_t(at) * row]);
    }
  }
  auto returned = trade(std::move(back), what + " combine", pass);

  // Every slot's result, in (token, slot) order.
  for (size_t d = 0; d < P; ++d)
    if (returned[d].size() != sent[d] * row)
      throw Error(fmt::format("{} combine: EP rank {} returned {} elements for {} rows", what, d, returned[d].size(),
                              sent[d]),
                  Error::Kind::Internal);
  OpScope unpack(log_, "moe_unpack", memory_work(pass, 2.0 * slots * row * element));
  std::vector<T> result(slots * row);
  std::vector<size_t> next(P, 0);
  for (size_t slot = 0; slot < slots; ++slot) {
    const size_t d = size_t(owner(expert[slot]));
    std::copy_n(&returned[d][next[d]++ * row], row, &result[slot * row]);
  }
  return result;
}

template class ExpertExchange<float>;
template class ExpertExchange<double>;

}  // namespace pipesim
