// The map store's operations on PostgreSQL (declared in postgres_keyval_store.hpp),
// inside the store's transaction (a savepoint per operation): the map's version row is
// locked first (FOR UPDATE), so two servers' changes of one map are serialized and each
// bumps the version once, with its change.
#include <utility>

#include "storage/postgres_keyval_store.hpp"

namespace parley::storage::postgres_map {

namespace {

struct PgVersionRow {
  int64_t version = 0;
  int64_t next_seq = 0;
};

Result<PgVersionRow, PgError> lock_version(PgConnection& db, const MapOwner& owner, bool for_update) {
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user)};
  static const std::string kRead = "SELECT version, next_seq FROM map_versions WHERE scope = $1 AND owner = $2";
  static const std::string kLock = kRead + " FOR UPDATE";
  auto rows = db.run(for_update ? kLock : kRead, params);
  if (!rows) return unexpected(rows.error());
  if (rows->rows() == 0) return PgVersionRow{};
  return PgVersionRow{rows->int64(0, 0), rows->int64(0, 1)};
}

Result<void, PgError> write_version(PgConnection& db, const MapOwner& owner, const PgVersionRow& v) {
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user), PgParam::integer(v.version),
                      PgParam::integer(v.next_seq)};
  auto r = db.run(
      "INSERT INTO map_versions (scope, owner, version, next_seq) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (scope, owner) DO UPDATE SET version = EXCLUDED.version, next_seq = EXCLUDED.next_seq",
      params);
  if (!r) return unexpected(r.error());
  return {};
}

}  // namespace

Result<MapSnapshot, PgError> get(PgConnection& db, const MapOwner& owner) {
  MapSnapshot snap;
  auto v = lock_version(db, owner, false);
  if (!v) return unexpected(v.error());
  snap.version = static_cast<uint64_t>(v->version);
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user)};
  auto rows = db.run("SELECT key, value FROM map_items WHERE scope = $1 AND owner = $2 ORDER BY seq", params);
  if (!rows) return unexpected(rows.error());
  for (int i = 0; i < rows->rows(); ++i)
    snap.items.push_back(MapItem{std::string(rows->bytes(i, 0)), std::string(rows->bytes(i, 1))});
  return snap;
}

Result<MapChange, PgError> put(PgConnection& db, const MapOwner& owner, const std::vector<MapItem>& items,
                               uint64_t max_items) {
  auto v = lock_version(db, owner, true);
  if (!v) return unexpected(v.error());
  for (const MapItem& item : items) {
    PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user), PgParam::text(item.key),
                        PgParam::integer(v->next_seq++), PgParam::bytes(item.value)};
    auto r = db.run(
        "INSERT INTO map_items (scope, owner, key, seq, value) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (scope, owner, key) DO UPDATE SET value = EXCLUDED.value",
        params);
    if (!r) return unexpected(r.error());
  }
  if (max_items > 0) {
    PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user)};
    auto rows = db.run("SELECT COUNT(*) FROM map_items WHERE scope = $1 AND owner = $2", params);
    if (!rows) return unexpected(rows.error());
    if (rows->rows() && static_cast<uint64_t>(rows->int64(0, 0)) > max_items)
      return unexpected(PgError{false, map_over_limit(max_items).message, std::string(postgres_keyval::kOverQuota)});
  }
  ++v->version;
  if (auto r = write_version(db, owner, *v); !r) return unexpected(r.error());
  return MapChange{static_cast<uint64_t>(v->version), items.size()};
}

Result<MapChange, PgError> remove(PgConnection& db, const MapOwner& owner, const std::vector<std::string>& keys) {
  auto v = lock_version(db, owner, true);
  if (!v) return unexpected(v.error());
  uint64_t changed = 0;
  for (const std::string& key : keys) {
    PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user), PgParam::text(key)};
    auto r = db.run("DELETE FROM map_items WHERE scope = $1 AND owner = $2 AND key = $3", params);
    if (!r) return unexpected(r.error());
    changed += r->affected();
  }
  if (changed > 0) {
    ++v->version;
    if (auto r = write_version(db, owner, *v); !r) return unexpected(r.error());
  }
  return MapChange{static_cast<uint64_t>(v->version), changed};
}

Result<MapChange, PgError> clear(PgConnection& db, const MapOwner& owner) {
  auto v = lock_version(db, owner, true);
  if (!v) return unexpected(v.error());
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user)};
  auto r = db.run("DELETE FROM map_items WHERE scope = $1 AND owner = $2", params);
  if (!r) return unexpected(r.error());
  ++v->version;  // as on SQLite: the version goes on for an empty map too
  if (auto w = write_version(db, owner, *v); !w) return unexpected(w.error());
  return MapChange{static_cast<uint64_t>(v->version), r->affected()};
}

}  // namespace parley::storage::postgres_map
