// storage/archive_totals.hpp - how many entries each owner's archive holds, kept by an
// archive store's one thread beside its database, so that a query over an owner's whole
// archive (the last page, what a client asks first) does not COUNT every entry for its
// <count/> (100,000 entries: 94 ms of the SQLite thread, 64 ms of PostgreSQL per query;
// BENCHMARKS.md, session 15).
//
// Exact, as the thread runs the operations in queue order inside its transactions: an
// append counts as soon as its statement succeeded (a query later in the same batch sees
// the row), a query's COUNT is kept as it read it, and a batch that does not commit as it
// ran (rolled back, run again, cut off) clears everything, as does an expiry run; a removal
// of one owner's entries forgets that owner. Bounded: past max_owners it starts again.
// Only this process writes the database's archives (one server per database until the
// cluster): another writer's appends would not be counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>

#include "storage/archive_store.hpp"

namespace parley::storage {

class ArchiveTotals {
 public:
  explicit ArchiveTotals(std::size_t max_owners = 65536) : max_owners_(max_owners) {}

  std::optional<uint64_t> get(const ArchiveKey& key) const {
    auto it = totals_.find(name(key));
    if (it == totals_.end()) return std::nullopt;
    return it->second;
  }
  void set(const ArchiveKey& key, uint64_t total) {
    if (totals_.size() >= max_owners_) totals_.clear();
    totals_[name(key)] = total;
  }
  // An entry of the owner's is in the database now (uncommitted, in this thread's transaction).
  void appended(const ArchiveKey& key) {
    auto it = totals_.find(name(key));
    if (it != totals_.end()) ++it->second;
  }
  void forget(const ArchiveKey& key) { totals_.erase(name(key)); }
  void clear() { totals_.clear(); }

 private:
  static std::string name(const ArchiveKey& key) { return key.scope + '\n' + key.owner; }

  std::size_t max_owners_;
  std::unordered_map<std::string, uint64_t> totals_;
};

// Whether a query's set is the owner's whole archive (no filter but a retention bound,
// min_id), whose size ArchiveTotals keeps: the set's size is that less the entries below
// min_id (those expiry has not removed yet: a few at most, the first of the owner's index).
inline bool whole_archive(const ArchiveQuery& q) {
  return q.with.empty() && q.start_us == std::numeric_limits<int64_t>::min() &&
         q.end_us == std::numeric_limits<int64_t>::max() && q.after_id == 0 && q.before_id == 0 && !q.by_ids;
}

}  // namespace parley::storage
