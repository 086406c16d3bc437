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

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "parley/result.hpp"
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
  void appended(std::string_view scope, std::string_view owner) {
    auto it = totals_.find(name(scope, owner));
    if (it != totals_.end()) ++it->second;
  }
  void appended(const ArchiveKey& key) { appended(key.scope, key.owner); }
  void forget(const ArchiveKey& key) { totals_.erase(name(key)); }
  void clear() { totals_.clear(); }

 private:
  // The map's key for `key`, made in a buffer that is reused (one thread uses an
  // ArchiveTotals): an append looks its owner up without allocating.
  const std::string& name(std::string_view scope, std::string_view owner) const {
    name_.assign(scope);
    name_ += '\n';
    name_ += owner;
    return name_;
  }
  const std::string& name(const ArchiveKey& key) const { return name(key.scope, key.owner); }

  mutable std::string name_;
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

// The two counts every backend's query makes, written once. `count(query, above, below,
// limit)` is the backend's: the entries of `query`'s set with above < id < below (0: no
// such bound), at most `limit` of them (0: all), as a Result<int64_t, E>.

// The size of the query's set: for the whole archive the kept size (counted once), less
// what the retention bound hides; any other set counted.
template <class Count>
auto set_total(ArchiveTotals* totals, const ArchiveQuery& q, Count&& count)
    -> Result<uint64_t, typename decltype(count(q, 0, 0, 0))::error_type> {
  if (totals == nullptr || !whole_archive(q)) {
    auto n = count(q, 0, 0, 0);
    if (!n) return unexpected(n.error());
    return static_cast<uint64_t>(*n);
  }
  ArchiveQuery all;
  all.key = q.key;
  std::optional<uint64_t> kept = totals->get(q.key);
  if (!kept) {
    auto n = count(all, 0, 0, 0);
    if (!n) return unexpected(n.error());
    kept = static_cast<uint64_t>(*n);
    totals->set(q.key, *kept);
  }
  if (q.min_id <= 1) return *kept;
  auto below = count(all, 0, q.min_id, 0);
  if (!below) return unexpected(below.error());
  return *kept - std::min(*kept, static_cast<uint64_t>(*below));
}

// The entries of the set before a page whose first id is `first`, counted from the
// nearer end (kIndexTailScan, archive_store.hpp).
template <class Count>
auto page_index(const ArchiveQuery& q, uint64_t total, uint64_t first, Count&& count)
    -> Result<uint64_t, typename decltype(count(q, 0, 0, 0))::error_type> {
  auto tail = count(q, first - 1, 0, q.from_end ? 0 : kIndexTailScan);
  if (!tail) return unexpected(tail.error());
  const auto n = static_cast<uint64_t>(*tail);
  if (q.from_end || n < kIndexTailScan) return total > n ? total - n : 0;
  auto head = count(q, 0, first, 0);
  if (!head) return unexpected(head.error());
  return static_cast<uint64_t>(*head);
}

}  // namespace parley::storage
