#include "storage/sqlite_keyval_store.hpp"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace parley::storage {

namespace sqlite_keyval {

namespace {

constexpr std::array<std::string_view, 2> kKeyvalMigrations = {
    // One row per (scope, owner, key); WITHOUT ROWID: the primary key is the table's
    // b-tree, so a get and a user's rows (quota, removal) are one range of it.
    "CREATE TABLE keyval (scope TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
    "PRIMARY KEY (scope, owner, key)) WITHOUT ROWID;",
    // The map store: items (seq: the order keys were first put) and each map's version
    // and next seq.
    "CREATE TABLE map_items (scope TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, "
    "value BLOB NOT NULL, PRIMARY KEY (scope, owner, key)) WITHOUT ROWID;"
    "CREATE INDEX map_items_by_seq ON map_items (scope, owner, seq);"
    "CREATE TABLE map_versions (scope TEXT NOT NULL, owner TEXT NOT NULL, version INTEGER NOT NULL, "
    "next_seq INTEGER NOT NULL, PRIMARY KEY (scope, owner)) WITHOUT ROWID;",
};

KeyvalError keyval_internal(const Error& e) { return KeyvalError{"internal-server-error", e.message}; }

Result<void, Error> bind_owner(Statement& s, const KeyvalOwner& owner) {
  if (auto r = s.bind(1, std::string_view(owner.scope)); !r) return r;
  return s.bind(2, std::string_view(owner.user));
}

}  // namespace

std::span<const std::string_view> migrations() { return kKeyvalMigrations; }

Result<std::optional<std::string>, KeyvalError> get(Database& db, const KeyvalOwner& owner, const std::string& key) {
  auto st = db.prepare("SELECT value FROM keyval WHERE scope = ?1 AND owner = ?2 AND key = ?3");
  if (!st) return unexpected(keyval_internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = bind_owner(s, owner);
  if (r) r = s.bind(3, std::string_view(key));
  if (!r) return unexpected(keyval_internal(r.error()));
  auto row = s.step();
  if (!row) {
    s.reset();
    return unexpected(keyval_internal(row.error()));
  }
  std::optional<std::string> value;
  if (*row) value = std::string(s.column_blob(0));
  s.reset();
  return value;
}

namespace {

// Appends every row of a bound statement (text, blob) to `items`; the statement is reset.
Result<void, KeyvalError> read_items(Statement& s, std::vector<KeyvalItem>& items) {
  for (;;) {
    auto row = s.step();
    if (!row) {
      s.reset();
      return unexpected(keyval_internal(row.error()));
    }
    if (!*row) break;
    items.push_back(KeyvalItem{std::string(s.column_text(0)), std::string(s.column_blob(1))});
  }
  s.reset();
  return {};
}

}  // namespace

Result<std::vector<KeyvalItem>, KeyvalError> list(Database& db, const KeyvalOwner& owner) {
  auto st = db.prepare("SELECT key, value FROM keyval WHERE scope = ?1 AND owner = ?2 ORDER BY key");
  if (!st) return unexpected(keyval_internal(st.error()));
  Statement& s = **st;
  if (auto r = bind_owner(s, owner); !r) return unexpected(keyval_internal(r.error()));
  std::vector<KeyvalItem> items;
  if (auto r = read_items(s, items); !r) return unexpected(r.error());
  return items;
}

namespace {

// "SELECT ... owner IN (?3, ?4, ..., ?258)": kGetManyChunk placeholders after the scope's
// and the key's (SQLite allows 32766 since 3.32).
std::string get_many_sql() {
  std::string sql = "SELECT owner, value FROM keyval WHERE scope = ?1 AND key = ?2 AND owner IN (";
  for (size_t i = 0; i < KeyvalStore::kGetManyChunk; ++i) {
    if (i > 0) sql += ", ";
    sql += "?" + std::to_string(i + 3);
  }
  return sql + ")";
}

}  // namespace

Result<std::vector<KeyvalItem>, KeyvalError> get_many(Database& db, const std::string& scope,
                                                      std::span<const std::string> users, const std::string& key) {
  static const std::string kSql = get_many_sql();
  std::vector<KeyvalItem> items;
  for (size_t from = 0; from < users.size(); from += KeyvalStore::kGetManyChunk) {
    auto st = db.prepare(kSql);
    if (!st) return unexpected(keyval_internal(st.error()));
    Statement& s = **st;
    Result<void, Error> r = s.bind(1, std::string_view(scope));
    if (r) r = s.bind(2, std::string_view(key));
    // NULL matches no owner: the last chunk's unused places.
    for (size_t i = 0; r && i < KeyvalStore::kGetManyChunk; ++i) {
      const int index = static_cast<int>(i + 3);
      r = from + i < users.size() ? s.bind(index, std::string_view(users[from + i])) : s.bind_null(index);
    }
    if (!r) {
      s.reset();
      return unexpected(keyval_internal(r.error()));
    }
    if (auto read = read_items(s, items); !read) return unexpected(read.error());
  }
  // Bytewise by user, as promised (the statements' rows come in that order today, but
  // without an ORDER BY nothing says so).
  std::sort(items.begin(), items.end(), [](const KeyvalItem& a, const KeyvalItem& b) { return a.key < b.key; });
  return items;
}

Result<void, KeyvalError> put(Database& db, const KeyvalOwner& owner, const std::vector<KeyvalItem>& items,
                              uint64_t max_user_bytes, KeyvalPut mode) {
  // A savepoint (or the transaction, at top level): every item or none.
  auto tx = db.begin();
  if (!tx) return unexpected(keyval_internal(tx.error()));
  auto st = db.prepare(mode == KeyvalPut::replace
                           ? "INSERT INTO keyval (scope, owner, key, value) VALUES (?1, ?2, ?3, ?4) "
                             "ON CONFLICT (scope, owner, key) DO UPDATE SET value = excluded.value"
                           : "INSERT INTO keyval (scope, owner, key, value) VALUES (?1, ?2, ?3, ?4) "
                             "ON CONFLICT (scope, owner, key) DO NOTHING");
  if (!st) return unexpected(keyval_internal(st.error()));
  for (const KeyvalItem& item : items) {
    Statement& s = **st;
    Result<void, Error> r = bind_owner(s, owner);
    if (r) r = s.bind(3, std::string_view(item.key));
    if (r) r = s.bind_blob(4, item.value);
    if (r) r = s.run();
    s.reset();
    if (!r) return unexpected(keyval_internal(r.error()));
  }
  if (max_user_bytes > 0) {
    // After the write, in the same transaction: the quota holds for what is stored.
    auto sum = db.prepare("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM keyval WHERE scope = ?1 AND owner = ?2");
    if (!sum) return unexpected(keyval_internal(sum.error()));
    Statement& s = **sum;
    if (auto r = bind_owner(s, owner); !r) return unexpected(keyval_internal(r.error()));
    auto row = s.step();
    if (!row) {
      s.reset();
      return unexpected(keyval_internal(row.error()));
    }
    int64_t total = *row ? s.column_int64(0) : 0;
    s.reset();
    if (total > 0 && static_cast<uint64_t>(total) > max_user_bytes) return unexpected(keyval_over_quota(max_user_bytes));
  }
  if (auto c = tx->commit(); !c) return unexpected(keyval_internal(c.error()));
  return {};
}

Result<uint64_t, KeyvalError> remove(Database& db, const KeyvalOwner& owner, const std::string& key) {
  auto st = db.prepare("DELETE FROM keyval WHERE scope = ?1 AND owner = ?2 AND key = ?3");
  if (!st) return unexpected(keyval_internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = bind_owner(s, owner);
  if (r) r = s.bind(3, std::string_view(key));
  if (r) r = s.run();
  s.reset();
  if (!r) return unexpected(keyval_internal(r.error()));
  return static_cast<uint64_t>(db.changes());
}

Result<uint64_t, KeyvalError> remove_user(Database& db, const KeyvalOwner& owner) {
  auto st = db.prepare("DELETE FROM keyval WHERE scope = ?1 AND owner = ?2");
  if (!st) return unexpected(keyval_internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = bind_owner(s, owner);
  if (r) r = s.run();
  s.reset();
  if (!r) return unexpected(keyval_internal(r.error()));
  return static_cast<uint64_t>(db.changes());
}

}  // namespace sqlite_keyval

// (The map store's operations are in sqlite_map.cpp.)

SqliteKeyvalStore::SqliteKeyvalStore(std::string path, size_t max_queue) : path_(std::move(path)), queue_(max_queue) {}

SqliteKeyvalStore::~SqliteKeyvalStore() { stop(); }

Result<void, Error> SqliteKeyvalStore::start() {
  std::lock_guard lock(lifecycle_);
  if (started_) return unexpected(Error{0, "keyval store already started"});
  auto db = Database::open(path_, Database::Mode::read_write);
  if (!db) return unexpected(std::move(db).error());
  if (auto r = (*db)->migrate("keyval", sqlite_keyval::migrations()); !r) return r;
  db_ = std::move(*db);
  thread_ = std::thread([this] {
    OpBatch<KeyvalOp> batch;
    for (;;) {
      queue_.take(kMaxBatch, batch);
      if (batch.empty()) return;  // stopping, and drained
      run_batch(batch);
    }
  });
  started_ = true;
  return {};
}

void SqliteKeyvalStore::push(KeyvalOp&& op) {
  if (!queue_.push(std::move(op)))
    op.fail(KeyvalError{"resource-constraint", "the keyval store is stopping or its queue is full"});
}

void SqliteKeyvalStore::get(KeyvalOwner owner, std::string key, GetDone done) {
  push(KeyvalOp::make_get(std::move(owner), std::move(key), std::move(done)));
}
void SqliteKeyvalStore::put(KeyvalOwner owner, std::vector<KeyvalItem> items, uint64_t max_user_bytes, KeyvalPut mode,
                            PutDone done) {
  push(KeyvalOp::make_put(std::move(owner), std::move(items), max_user_bytes, mode, std::move(done)));
}
void SqliteKeyvalStore::remove(KeyvalOwner owner, std::string key, RemoveDone done) {
  push(KeyvalOp::make_remove(std::move(owner), std::move(key), std::move(done)));
}
void SqliteKeyvalStore::list(KeyvalOwner owner, ListDone done) {
  push(KeyvalOp::make_list(std::move(owner), std::move(done)));
}
void SqliteKeyvalStore::get_many(std::string scope, std::vector<std::string> users, std::string key,
                                 GetManyDone done) {
  push(KeyvalOp::make_get_many(std::move(scope), std::move(users), std::move(key), std::move(done)));
}
void SqliteKeyvalStore::remove_user(KeyvalOwner owner, RemoveDone done) {
  push(KeyvalOp::make_remove_user(std::move(owner), std::move(done)));
}

void SqliteKeyvalStore::map_get(MapOwner owner, MapStore::SnapshotDone done) {
  push(KeyvalOp::make_map_get(std::move(owner), std::move(done)));
}
void SqliteKeyvalStore::map_put(MapOwner owner, std::vector<MapItem> items, uint64_t max_items, ChangeDone done) {
  push(KeyvalOp::make_map_put(std::move(owner), std::move(items), max_items, std::move(done)));
}
void SqliteKeyvalStore::map_remove(MapOwner owner, std::vector<std::string> keys, ChangeDone done) {
  push(KeyvalOp::make_map_remove(std::move(owner), std::move(keys), std::move(done)));
}
void SqliteKeyvalStore::map_clear(MapOwner owner, ChangeDone done) {
  push(KeyvalOp::make_map_clear(std::move(owner), std::move(done)));
}

void SqliteKeyvalStore::run_batch(OpBatch<KeyvalOp>& batch) {
  auto tx = db_->begin();
  if (!tx) {
    for (KeyvalOp& op : batch) op.fail(KeyvalError{"internal-server-error", tx.error().message});
    return;
  }
  std::vector<KeyvalOp::Outcome> outcomes(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    KeyvalOp& op = batch[i];
    KeyvalOp::Outcome& out = outcomes[i];
    switch (op.kind) {
      case KeyvalOp::Kind::get:
        if (auto r = sqlite_keyval::get(*db_, op.owner, op.key); r) out.value = std::move(*r);
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::put:
        // A savepoint of its own (put begins one inside the batch's transaction).
        if (auto r = sqlite_keyval::put(*db_, op.owner, op.items, op.limit, op.mode); !r) out.error = r.error();
        break;
      case KeyvalOp::Kind::remove:
        if (auto r = sqlite_keyval::remove(*db_, op.owner, op.key); r) out.removed = *r;
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::remove_user:
        if (auto r = sqlite_keyval::remove_user(*db_, op.owner); r) out.removed = *r;
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::list:
        if (auto r = sqlite_keyval::list(*db_, op.owner); r) out.snapshot.items = std::move(*r);
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::get_many:
        if (auto r = sqlite_keyval::get_many(*db_, op.owner.scope, op.keys, op.key); r)
          out.snapshot.items = std::move(*r);
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::map_get:
        if (auto r = sqlite_map::get(*db_, op.owner); r) out.snapshot = std::move(*r);
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::map_put:
        if (auto r = sqlite_map::put(*db_, op.owner, op.items, op.limit); r) out.change = *r;
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::map_remove:
        if (auto r = sqlite_map::remove(*db_, op.owner, op.keys); r) out.change = *r;
        else out.error = r.error();
        break;
      case KeyvalOp::Kind::map_clear:
        if (auto r = sqlite_map::clear(*db_, op.owner); r) out.change = *r;
        else out.error = r.error();
        break;
    }
  }
  auto committed = tx->commit();
  for (size_t i = 0; i < batch.size(); ++i) {
    // A failed commit stored nothing of the batch: every write says so.
    if (!committed && !batch[i].is_read())
      outcomes[i].error = KeyvalError{"internal-server-error", committed.error().message};
    batch[i].complete(std::move(outcomes[i]));
  }
}

void SqliteKeyvalStore::stop() {
  std::lock_guard lock(lifecycle_);
  queue_.stop();
  if (thread_.joinable()) thread_.join();
  for (KeyvalOp& op : queue_.drain()) op.fail(KeyvalError{"internal-server-error", "the keyval store stopped"});
  db_.reset();
}

}  // namespace parley::storage
