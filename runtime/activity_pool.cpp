// GPU activity sorted out by owner (see activity_pool.hpp).
#include "runtime/activity_pool.hpp"

#include <algorithm>
#include <iterator>

namespace pipesim {

int ActivityPool::add_owner(std::uint32_t thread) {
  owners_.push_back({thread});
  return static_cast<int>(owners_.size()) - 1;
}

void ActivityPool::add_thread(int owner, std::uint32_t thread) {
  owners_.at(static_cast<std::size_t>(owner)).push_back(thread);
}

void ActivityPool::remove_thread(int owner, std::uint32_t thread) {
  auto& threads = owners_.at(static_cast<std::size_t>(owner));
  if (auto it = std::find(threads.begin() + 1, threads.end(), thread); it != threads.end()) threads.erase(it);
}

void ActivityPool::add_activity(GpuActivity activity) { activities_.push_back({std::move(activity), 0}); }

void ActivityPool::add_operator(std::uint32_t correlation, std::uint64_t op) { operators_[correlation] = {op, 0}; }

void ActivityPool::add_call(std::uint32_t correlation, std::uint32_t thread) { calls_[correlation] = {thread, 0}; }

namespace {

// One more take waited through; what has waited longer than `patience` goes.
template <class Map>
void age_out(Map& table, int patience) {
  for (auto it = table.begin(); it != table.end();) it = ++it->second.age > patience ? table.erase(it) : std::next(it);
}

}  // namespace

std::vector<GpuActivity> ActivityPool::take(int owner) {
  const bool alone = owners_.size() == 1;
  const int patience = 2 * static_cast<int>(std::max<std::size_t>(owners_.size(), 1));
  auto owner_of = [&](std::uint32_t thread) {
    for (std::size_t i = 0; i < owners_.size(); ++i)
      if (std::find(owners_[i].begin(), owners_[i].end(), thread) != owners_[i].end()) return static_cast<int>(i);
    return -1;
  };
  std::vector<GpuActivity> out;
  std::vector<Aged<GpuActivity>> kept;
  std::vector<std::uint32_t> taken;  // correlations of what was taken: their entries go after the loop
  for (auto& a : activities_) {
    auto call = calls_.find(a.value.correlation);
    int launched_by = call == calls_.end() ? -1 : owner_of(call->second.value);
    if (alone || launched_by == owner) {
      if (auto op = operators_.find(a.value.correlation); op != operators_.end()) a.value.op = op->second.value;
      taken.push_back(a.value.correlation);
      out.push_back(std::move(a.value));
    } else if (++a.age <= patience) {  // another owner's (taken at its turn), or its call has not arrived
      kept.push_back(std::move(a));
    }
  }
  activities_ = std::move(kept);
  for (auto c : taken) {
    operators_.erase(c);
    calls_.erase(c);
  }
  // The owner takes once its work has finished, so its calls that are still here launched nothing (a
  // synchronization, a query): they go now, with their operators, instead of waiting out their patience.
  if (!owners_.empty())
    for (auto it = calls_.begin(); it != calls_.end();) {
      if (alone || owner_of(it->second.value) == owner) {
        operators_.erase(it->first);
        it = calls_.erase(it);
      } else {
        ++it;
      }
    }
  age_out(operators_, patience);
  age_out(calls_, patience);
  std::sort(out.begin(), out.end(), [](const GpuActivity& a, const GpuActivity& b) { return a.start_ns < b.start_ns; });
  return out;
}

}  // namespace pipesim
