#include "core/modules/module_counters.hpp"

namespace parley {

ModuleCounters::ModuleCounters(size_t loops) {
  shards_.reserve(loops);
  for (size_t i = 0; i < loops; ++i) shards_.push_back(std::make_unique<Shard>());
}

void ModuleCounters::add(std::string_view name, int64_t delta, int loop) {
  if (loop < 0 || static_cast<size_t>(loop) >= shards_.size()) return add_locked(name, delta);
  Shard& shard = *shards_[static_cast<size_t>(loop)];
  // Only this thread appends to the shard: a relaxed read of its own count.
  const size_t n = shard.count.load(std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    if (shard.names[i] == name) {
      shard.values[i].store(shard.values[i].load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
      return;
    }
  }
  if (n == kShardCapacity) return add_locked(name, delta);
  shard.names[n] = std::string(name);
  shard.values[n].store(delta, std::memory_order_relaxed);
  shard.count.store(n + 1, std::memory_order_release);  // the name is readable from here on
}

void ModuleCounters::add_locked(std::string_view name, int64_t delta) {
  std::lock_guard lock(spill_mutex_);
  auto it = spill_.find(name);
  if (it == spill_.end()) it = spill_.emplace(std::string(name), 0).first;
  it->second += delta;
}

std::map<std::string, int64_t> ModuleCounters::totals() const {
  std::map<std::string, int64_t> out;
  for (const auto& shard : shards_) {
    const size_t n = shard->count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) out[shard->names[i]] += shard->values[i].load(std::memory_order_relaxed);
  }
  std::lock_guard lock(spill_mutex_);
  for (const auto& [name, value] : spill_) out[name] += value;
  return out;
}

}  // namespace parley
