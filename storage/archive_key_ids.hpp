// storage/archive_key_ids.hpp - the integer ids of an archive's owners and correspondents
// as a store's thread knows them: the rows of archive_owner (scope, bare JID) and
// archive_jid (bare JID) that both backends' archives are keyed by (SQLite schema step 2,
// PostgreSQL step 3), made at an owner's or a JID's first append and never removed.
//
// Only ids of committed rows are kept past their transaction: an id read or made inside a
// transaction waits until end_transaction says it committed (a row made by a transaction
// rolled back is gone, and its id could be given to the next owner: a kept id would then
// show one owner's archive to another). One per connection, on its thread only. Bounded:
// past kMaxCached entries a map starts again (one look-up each to refill it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace parley::storage {

class ArchiveKeyIds {
 public:
  static constexpr std::size_t kMaxCached = 16384;

  // The keys the ids are kept under, made in `out` (a buffer the caller reuses).
  static void owner_key(std::string& out, std::string_view scope, std::string_view owner) {
    out.assign("o").append(scope).append(1, '\n').append(owner);
  }
  static void jid_key(std::string& out, std::string_view bare) { out.assign("j").append(bare); }

  // The id kept for `key`, committed or read in the open transaction; 0: none.
  int64_t find(const std::string& key) const {
    if (auto it = committed_.find(key); it != committed_.end()) return it->second;
    if (auto it = pending_.find(key); it != pending_.end()) return it->second;
    return 0;
  }
  // An id read or made: `in_transaction` false when its statement committed by itself.
  void add(const std::string& key, int64_t id, bool in_transaction) {
    auto& into = in_transaction ? pending_ : committed_;
    if (into.size() >= kMaxCached) into.clear();
    into[key] = id;
  }
  // The transaction the pending ids were read or made in has ended: committed, they are
  // kept; otherwise forgotten.
  void end_transaction(bool committed) {
    if (committed)
      for (auto& [key, id] : pending_) {
        if (committed_.size() >= kMaxCached) committed_.clear();
        committed_.emplace(key, id);
      }
    pending_.clear();
  }

 private:
  std::unordered_map<std::string, int64_t> committed_;
  std::unordered_map<std::string, int64_t> pending_;
};

}  // namespace parley::storage
