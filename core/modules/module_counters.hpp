// A module instance's named counters (ABI 1.0 counter_add): any name, made
// up on the first add, shown by `parleyctl status`. Modules add to them on
// the stanza path (mod_blocking per blocked stanza, mod_offline per stored
// message), from any loop, so each worker loop keeps its own shard that only
// its thread writes: the first adds of a name append it (published with a
// release store of the count), later ones are a relaxed store to the loop's
// own cell. Readers sum the shards without stopping anyone.
//
// Adds off the loops (start(), stop()) and the names past a shard's capacity
// go to one locked map: rare by construction, never the common path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

class ModuleCounters {
 public:
  // Names one loop's shard holds before it spills into the locked map.
  static constexpr size_t kShardCapacity = 32;

  explicit ModuleCounters(size_t loops);

  // `loop`: the calling worker loop's index, < 0 off the loops. A loop's
  // shard is written only by that loop's thread.
  void add(std::string_view name, int64_t delta, int loop);
  // The sum over every shard, by name. Any thread.
  std::map<std::string, int64_t> totals() const;

 private:
  struct alignas(64) Shard {
    std::array<std::string, kShardCapacity> names;  // [0, count): immutable once published
    std::array<std::atomic<int64_t>, kShardCapacity> values{};
    std::atomic<size_t> count{0};
  };
  void add_locked(std::string_view name, int64_t delta);

  std::vector<std::unique_ptr<Shard>> shards_;
  mutable std::mutex spill_mutex_;
  std::map<std::string, int64_t, std::less<>> spill_;
};

}  // namespace parley
