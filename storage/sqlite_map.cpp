// The map store's operations on SQLite (declared in sqlite_keyval_store.hpp): each in a
// savepoint (or a transaction at top level), the version bumped in it with the change.
#include <utility>

#include "storage/sqlite_keyval_store.hpp"

namespace parley::storage::sqlite_map {

namespace {

KeyvalError map_internal(const Error& e) { return KeyvalError{"internal-server-error", e.message}; }

Result<void, Error> bind_map_owner(Statement& s, const MapOwner& owner) {
  if (auto r = s.bind(1, std::string_view(owner.scope)); !r) return r;
  return s.bind(2, std::string_view(owner.user));
}

struct VersionRow {
  int64_t version = 0;
  int64_t next_seq = 0;
};

Result<VersionRow, Error> read_version(Database& db, const MapOwner& owner) {
  auto st = db.prepare("SELECT version, next_seq FROM map_versions WHERE scope = ?1 AND owner = ?2");
  if (!st) return unexpected(st.error());
  Statement& s = **st;
  if (auto r = bind_map_owner(s, owner); !r) return unexpected(r.error());
  auto row = s.step();
  if (!row) {
    s.reset();
    return unexpected(row.error());
  }
  VersionRow v;
  if (*row) v = VersionRow{s.column_int64(0), s.column_int64(1)};
  s.reset();
  return v;
}

Result<void, Error> write_version(Database& db, const MapOwner& owner, const VersionRow& v) {
  auto st = db.prepare(
      "INSERT INTO map_versions (scope, owner, version, next_seq) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (scope, owner) DO UPDATE SET version = excluded.version, next_seq = excluded.next_seq");
  if (!st) return unexpected(st.error());
  Statement& s = **st;
  Result<void, Error> r = bind_map_owner(s, owner);
  if (r) r = s.bind(3, v.version);
  if (r) r = s.bind(4, v.next_seq);
  if (r) r = s.run();
  s.reset();
  return r;
}

}  // namespace

Result<MapSnapshot, KeyvalError> get(Database& db, const MapOwner& owner) {
  MapSnapshot snap;
  auto v = read_version(db, owner);
  if (!v) return unexpected(map_internal(v.error()));
  snap.version = static_cast<uint64_t>(v->version);
  auto st = db.prepare("SELECT key, value FROM map_items WHERE scope = ?1 AND owner = ?2 ORDER BY seq");
  if (!st) return unexpected(map_internal(st.error()));
  Statement& s = **st;
  if (auto r = bind_map_owner(s, owner); !r) return unexpected(map_internal(r.error()));
  for (;;) {
    auto row = s.step();
    if (!row) {
      s.reset();
      return unexpected(map_internal(row.error()));
    }
    if (!*row) break;
    snap.items.push_back(MapItem{std::string(s.column_text(0)), std::string(s.column_blob(1))});
  }
  s.reset();
  return snap;
}

Result<MapChange, KeyvalError> put(Database& db, const MapOwner& owner, const std::vector<MapItem>& items,
                                   uint64_t max_items) {
  auto tx = db.begin();
  if (!tx) return unexpected(map_internal(tx.error()));
  auto v = read_version(db, owner);
  if (!v) return unexpected(map_internal(v.error()));
  auto st = db.prepare(
      "INSERT INTO map_items (scope, owner, key, seq, value) VALUES (?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT (scope, owner, key) DO UPDATE SET value = excluded.value");
  if (!st) return unexpected(map_internal(st.error()));
  for (const MapItem& item : items) {
    Statement& s = **st;
    Result<void, Error> r = bind_map_owner(s, owner);
    if (r) r = s.bind(3, std::string_view(item.key));
    if (r) r = s.bind(4, v->next_seq++);  // used only if the key is new: it keeps its place otherwise
    if (r) r = s.bind_blob(5, item.value);
    if (r) r = s.run();
    s.reset();
    if (!r) return unexpected(map_internal(r.error()));
  }
  if (max_items > 0) {
    auto count = db.prepare("SELECT COUNT(*) FROM map_items WHERE scope = ?1 AND owner = ?2");
    if (!count) return unexpected(map_internal(count.error()));
    Statement& s = **count;
    if (auto r = bind_map_owner(s, owner); !r) return unexpected(map_internal(r.error()));
    auto row = s.step();
    int64_t n = row && *row ? s.column_int64(0) : 0;
    s.reset();
    if (!row) return unexpected(map_internal(row.error()));
    if (static_cast<uint64_t>(n) > max_items) return unexpected(map_over_limit(max_items));
  }
  ++v->version;
  if (auto r = write_version(db, owner, *v); !r) return unexpected(map_internal(r.error()));
  if (auto c = tx->commit(); !c) return unexpected(map_internal(c.error()));
  return MapChange{static_cast<uint64_t>(v->version), items.size()};
}

Result<MapChange, KeyvalError> remove(Database& db, const MapOwner& owner, const std::vector<std::string>& keys) {
  auto tx = db.begin();
  if (!tx) return unexpected(map_internal(tx.error()));
  auto v = read_version(db, owner);
  if (!v) return unexpected(map_internal(v.error()));
  auto st = db.prepare("DELETE FROM map_items WHERE scope = ?1 AND owner = ?2 AND key = ?3");
  if (!st) return unexpected(map_internal(st.error()));
  uint64_t changed = 0;
  for (const std::string& key : keys) {
    Statement& s = **st;
    Result<void, Error> r = bind_map_owner(s, owner);
    if (r) r = s.bind(3, std::string_view(key));
    if (r) r = s.run();
    s.reset();
    if (!r) return unexpected(map_internal(r.error()));
    changed += static_cast<uint64_t>(db.changes());
  }
  if (changed > 0) {
    ++v->version;
    if (auto r = write_version(db, owner, *v); !r) return unexpected(map_internal(r.error()));
  }
  if (auto c = tx->commit(); !c) return unexpected(map_internal(c.error()));
  return MapChange{static_cast<uint64_t>(v->version), changed};
}

Result<MapChange, KeyvalError> clear(Database& db, const MapOwner& owner) {
  auto tx = db.begin();
  if (!tx) return unexpected(map_internal(tx.error()));
  auto v = read_version(db, owner);
  if (!v) return unexpected(map_internal(v.error()));
  auto st = db.prepare("DELETE FROM map_items WHERE scope = ?1 AND owner = ?2");
  if (!st) return unexpected(map_internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = bind_map_owner(s, owner);
  if (r) r = s.run();
  s.reset();
  if (!r) return unexpected(map_internal(r.error()));
  const uint64_t changed = static_cast<uint64_t>(db.changes());
  // The version goes on even for an empty map: a client's old version never matches
  // a map made afresh (an account removed and created again).
  ++v->version;
  if (auto w = write_version(db, owner, *v); !w) return unexpected(map_internal(w.error()));
  if (auto c = tx->commit(); !c) return unexpected(map_internal(c.error()));
  return MapChange{static_cast<uint64_t>(v->version), changed};
}

}  // namespace parley::storage::sqlite_map
