// storage/archive_store.hpp - the archive store (issue 11): per-owner append-only logs of
// (id, timestamp, with, payload), queried by time range, with, id bounds and id lists,
// paged from either end (XEP-0059 RSM), removed by age or by owner.
//
// Backend-neutral: nothing here names SQLite. A backend runs every operation off the
// caller's thread and calls the completion on one of its own threads; the core posts it
// back to the loop that asked. Operations of one store run in the order they were queued
// (one owner's appends stay in order, and a query sees every append queued before it).
//
// Ids are made by the store when an append is queued, and returned at once (a stanza can
// carry its id before the append completes): store-wide unique, never reused (above every
// id stored, whatever the clock does), and increasing in the order appends are queued, so
// that a query, queued after them, that sees an id also sees every smaller one (RSM paging
// "after the last id I saw" never skips an entry that was still on its way). An id is
// max(last id + 1, the entry's timestamp in microseconds): never below its timestamp,
// which lets a time bound be an id bound (expiry, ids_above below).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.hpp"

namespace parley::storage {

struct ArchiveEntry {
  uint64_t id = 0;
  int64_t timestamp_us = 0;  // microseconds since the epoch, UTC
  std::string with;          // the other party's JID as stored (full or bare)
  std::string payload;       // opaque bytes (mod_mam: the serialized message)
};

// Which archives: `scope` separates the users of the store (a module on one host, e.g.
// "mod_mam/example.org"); `owner` is one archive in it (a bare JID).
struct ArchiveKey {
  std::string scope;
  std::string owner;
};

// An append as the caller hands it over: views, valid for the call only (the store
// copies them).
struct ArchiveAppend {
  std::string_view scope;
  std::string_view owner;
  std::string_view with;     // the other party's JID as stored (full or bare)
  std::string_view payload;  // opaque bytes
  int64_t timestamp_us = 0;  // microseconds since the epoch, UTC
};

// An append as a store queues it: its four strings in one buffer. The loop that appends
// pays one allocation, not one per string, and the store's thread frees one block (a
// block freed by another thread than the one that allocated it is glibc malloc's slow
// path: BENCHMARKS.md, "Session 18").
class PackedAppend {
 public:
  PackedAppend() = default;
  explicit PackedAppend(const ArchiveAppend& a) : PackedAppend(a, std::string()) {}
  // Packed into `buffer`, whose memory is reused when it is large enough (the archive
  // queue's recycled buffers: OpQueue::push_built).
  PackedAppend(const ArchiveAppend& a, std::string buffer)
      : timestamp_us(a.timestamp_us),
        bytes_(std::move(buffer)),
        scope_len_(static_cast<uint32_t>(a.scope.size())),
        owner_len_(static_cast<uint32_t>(a.owner.size())),
        with_len_(static_cast<uint32_t>(a.with.size())) {
    bytes_.clear();
    bytes_.reserve(a.scope.size() + a.owner.size() + a.with.size() + a.payload.size());
    bytes_.append(a.scope).append(a.owner).append(a.with).append(a.payload);
  }

  std::string_view scope() const { return std::string_view(bytes_).substr(0, scope_len_); }
  std::string_view owner() const { return std::string_view(bytes_).substr(scope_len_, owner_len_); }
  std::string_view with() const { return std::string_view(bytes_).substr(scope_len_ + owner_len_, with_len_); }
  std::string_view payload() const { return std::string_view(bytes_).substr(scope_len_ + owner_len_ + with_len_); }
  ArchiveKey key() const { return ArchiveKey{std::string(scope()), std::string(owner())}; }
  // The buffer, for another append (the entry is empty after).
  std::string take_bytes() {
    scope_len_ = owner_len_ = with_len_ = 0;
    return std::move(bytes_);
  }

  uint64_t id = 0;  // given as it is queued
  int64_t timestamp_us = 0;

 private:
  std::string bytes_;  // scope, owner, with, payload
  uint32_t scope_len_ = 0;
  uint32_t owner_len_ = 0;
  uint32_t with_len_ = 0;
};

struct ArchiveQuery {
  ArchiveKey key;
  // The result set: entries matching every filter given.
  std::string with;  // empty: any; a bare JID matches it and all its resources; a full JID only itself
  int64_t start_us = std::numeric_limits<int64_t>::min();  // inclusive
  int64_t end_us = std::numeric_limits<int64_t>::max();    // inclusive
  uint64_t after_id = 0;   // 0: none; else only ids above it (the id must exist: item-not-found)
  uint64_t before_id = 0;  // 0: none; else only ids below it (likewise)
  bool by_ids = false;     // only the entries whose id is in `ids` (each must exist: item-not-found)
  std::vector<uint64_t> ids;
  // The page of that set: up to `max` entries after page_after (forward, the default) or,
  // with from_end, the last `max` entries before page_before (0 with from_end: the last
  // page). page_after / page_before must exist too (item-not-found). max == 0: count only.
  uint64_t page_after = 0;
  uint64_t page_before = 0;
  bool from_end = false;
  uint32_t max = 0;
  // 0: none; else only ids at or above it, without item-not-found: a retention bound (the
  // oldest time kept: hides what expiry has not removed yet), which leaves the set the
  // whole archive for whole_archive() (archive_totals.hpp).
  uint64_t min_id = 0;
};

// The ids of the query's set are all above this (exclusive): after_id, or below `start`
// (an entry at or after start has an id at or above it). A backend bounds its index range
// with it, so that a page with a start (a client catching up since a time) reads from
// there instead of scanning every older entry of the owner.
inline uint64_t ids_above(const ArchiveQuery& q) {
  uint64_t above = q.start_us > 0 ? static_cast<uint64_t>(q.start_us) - 1 : 0;
  if (q.min_id > above + 1) above = q.min_id - 1;
  return q.after_id > above ? q.after_id : above;
}

// A page's index (the entries of the set before it) is counted from the nearer end: the
// entries from the page on when fewer than this (a page near the end: the last, a client
// catching up after a recent id; total less those), else the entries before it. Exact
// either way; a page read from the end counts from there whatever the number.
inline constexpr uint64_t kIndexTailScan = 1000;

struct ArchivePage {
  std::vector<ArchiveEntry> entries;  // ascending ids
  uint64_t total = 0;    // entries in the result set (not only this page)
  uint64_t index = 0;    // how many entries of the set come before the page's first
  bool complete = false; // the page reaches the end of the set in its direction
};

// condition: an RFC 6120 stanza error condition ("item-not-found", "internal-server-error",
// "resource-constraint"); message: for the log.
struct ArchiveError {
  std::string condition;
  std::string message;
};

class ArchiveStore {
 public:
  using AppendDone = std::function<void(Result<void, ArchiveError>)>;
  using QueryDone = std::function<void(Result<ArchivePage, ArchiveError>)>;
  using RemoveDone = std::function<void(Result<uint64_t, ArchiveError>)>;  // entries removed

  virtual ~ArchiveStore() = default;

  // Completions run on a thread of the store, exactly once each (also when the store stops
  // before it ran the operation: then with an error). They must not throw.
  // append: returns the id given to the entry, or 0 if refused (stopping, or the queue is
  // full): then `done` never runs. Appends complete in the order of their ids.
  virtual uint64_t append(const ArchiveAppend& entry, AppendDone done) = 0;
  // The same from owned strings (entry.id is ignored): tests, tools.
  uint64_t append(const ArchiveKey& key, const ArchiveEntry& entry, AppendDone done) {
    return append(ArchiveAppend{key.scope, key.owner, entry.with, entry.payload, entry.timestamp_us}, std::move(done));
  }
  virtual void query(ArchiveQuery query, QueryDone done) = 0;
  // owner empty: every archive of the scope. Removes entries older than before_us
  // (INT64_MAX: all of them).
  virtual void remove(ArchiveKey key, int64_t before_us, RemoveDone done) = 0;

  // Operations waiting (the health gauge).
  virtual size_t queue_length() const = 0;
  // Whether the store is working through its queue (false while a database server is
  // away): a queue that grows then is an outage, not appends arriving faster than they
  // are stored, and the host does not pace clients by it. Any thread.
  virtual bool available() const { return true; }

  // Every append with an id up to this one has completed: its `done` ran, or runs now (the
  // store sets it just before). Appends complete in id order, so the host releases the
  // clients it paced by comparing their appends' ids with it, one wake-up of a loop for
  // many appends. Any thread. Sequentially consistent, as the store's write of it: the host
  // orders it with a flag of its own (host_api_archive.cpp, wake_for_holds).
  uint64_t completed_through() const { return completed_through_.load(); }

  // `fn` runs on the store's thread each time it loses its database, once available()
  // turned false: where the host releases the clients it paced. Set before start(); it
  // must be quick and must not throw. (A store on a local file never calls it.)
  void set_on_unavailable(std::function<void()> fn) { on_unavailable_ = std::move(fn); }

  // Finishes what is queued, then stops. Idempotent.
  virtual void stop() = 0;

 protected:
  void became_unavailable() const {
    if (on_unavailable_) on_unavailable_();
  }
  // The store's thread, before an append's `done` runs.
  void completing(uint64_t id) {
    if (id > completed_through_.load(std::memory_order_relaxed)) completed_through_.store(id);
  }

 private:
  std::function<void()> on_unavailable_;
  std::atomic<uint64_t> completed_through_{0};
};

// The bare part of a JID ("a@b/c" -> "a@b").
inline std::string_view archive_bare_view(std::string_view jid) { return jid.substr(0, jid.find('/')); }
inline std::string archive_bare(const std::string& jid) {
  auto slash = jid.find('/');
  return slash == std::string::npos ? jid : jid.substr(0, slash);
}

}  // namespace parley::storage
