#include "storage/postgres_keyval_store.hpp"

#include "storage/pg_binary_array.hpp"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace parley::storage {

namespace postgres_keyval {

namespace {

constexpr std::array<std::string_view, 2> kPgKeyvalMigrations = {
    "CREATE TABLE keyval (scope TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, value BYTEA NOT NULL, "
    "PRIMARY KEY (scope, owner, key));",
    // The map store (see the SQLite steps).
    "CREATE TABLE map_items (scope TEXT NOT NULL, owner TEXT NOT NULL, key TEXT NOT NULL, seq BIGINT NOT NULL, "
    "value BYTEA NOT NULL, PRIMARY KEY (scope, owner, key));"
    "CREATE INDEX map_items_by_seq ON map_items (scope, owner, seq);"
    "CREATE TABLE map_versions (scope TEXT NOT NULL, owner TEXT NOT NULL, version BIGINT NOT NULL, "
    "next_seq BIGINT NOT NULL, PRIMARY KEY (scope, owner));",
};

}  // namespace

std::span<const std::string_view> migrations() { return kPgKeyvalMigrations; }

Result<std::optional<std::string>, PgError> get(PgConnection& db, const KeyvalOwner& owner, const std::string& key) {
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user), PgParam::text(key)};
  auto rows = db.run("SELECT value FROM keyval WHERE scope = $1 AND owner = $2 AND key = $3", params);
  if (!rows) return unexpected(rows.error());
  std::optional<std::string> value;
  if (rows->rows() > 0) value = std::string(rows->bytes(0, 0));
  return value;
}

Result<std::vector<KeyvalItem>, PgError> list(PgConnection& db, const KeyvalOwner& owner) {
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user)};
  // COLLATE "C": bytewise, the order SQLite's gives.
  auto rows = db.run("SELECT key, value FROM keyval WHERE scope = $1 AND owner = $2 ORDER BY key COLLATE \"C\"", params);
  if (!rows) return unexpected(rows.error());
  std::vector<KeyvalItem> items;
  for (int r = 0; r < rows->rows(); ++r)
    items.push_back(KeyvalItem{std::string(rows->bytes(r, 0)), std::string(rows->bytes(r, 1))});
  return items;
}

namespace {

// A text[] parameter (pg_binary_array.hpp): nothing to quote.
PgParam text_array(std::span<const std::string> values) {
  size_t bytes = 0;
  for (const std::string& v : values) bytes += v.size();
  BinaryArray array(BinaryArray::kText, values.size(), bytes);
  for (const std::string& v : values) array.add(std::string_view(v));
  return std::move(array).param();
}

}  // namespace

Result<std::vector<KeyvalItem>, PgError> get_many(PgConnection& db, const std::string& scope,
                                                  std::span<const std::string> users, const std::string& key) {
  // A primary-key lookup per user, whatever the plan cache picks: `owner = ANY($3)` got a
  // generic plan after five runs that scanned every row of the scope and filtered them
  // against the array (EXPLAIN ANALYZE, PostgreSQL 15: 47 ms for 256 of 1,000 users; a
  // join on unnest() a hash of every row of the scope). The LIMIT keeps the lateral
  // subquery from being flattened into such a join (the key is unique: it drops nothing).
  static const std::string kSql =
      "SELECT u.owner, k.value FROM unnest($3::text[]) AS u(owner) CROSS JOIN LATERAL "
      "(SELECT value FROM keyval WHERE scope = $1 AND owner = u.owner AND key = $2 LIMIT 1) AS k";
  std::vector<KeyvalItem> items;
  for (size_t from = 0; from < users.size(); from += KeyvalStore::kGetManyChunk) {
    const size_t n = std::min(KeyvalStore::kGetManyChunk, users.size() - from);
    PgParam params[] = {PgParam::text(scope), PgParam::text(key), text_array(users.subspan(from, n))};
    auto rows = db.run(kSql, params);
    if (!rows) return unexpected(rows.error());
    for (int r = 0; r < rows->rows(); ++r)
      items.push_back(KeyvalItem{std::string(rows->bytes(r, 0)), std::string(rows->bytes(r, 1))});
  }
  // Bytewise by user, as promised (the statements' rows come in that order today, but
  // without an ORDER BY nothing says so).
  std::sort(items.begin(), items.end(), [](const KeyvalItem& a, const KeyvalItem& b) { return a.key < b.key; });
  return items;
}

Result<void, PgError> put(PgConnection& db, const KeyvalOwner& owner, const std::vector<KeyvalItem>& items,
                          uint64_t max_user_bytes, KeyvalPut mode) {
  static const std::string kReplace =
      "INSERT INTO keyval (scope, owner, key, value) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (scope, owner, key) DO UPDATE SET value = EXCLUDED.value";
  static const std::string kIfAbsent =
      "INSERT INTO keyval (scope, owner, key, value) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (scope, owner, key) DO NOTHING";
  for (const KeyvalItem& item : items) {
    PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user), PgParam::text(item.key),
                        PgParam::bytes(item.value)};
    auto r = db.run(mode == KeyvalPut::replace ? kReplace : kIfAbsent, params);
    if (!r) return unexpected(r.error());
  }
  if (max_user_bytes > 0) {
    // After the write, in the same transaction: the quota holds for what is stored (the
    // rows of the owner are locked by the writes above or by FOR UPDATE below, so two
    // servers' puts on one owner cannot both pass it).
    PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user)};
    auto rows = db.run(
        "SELECT COALESCE(SUM(octet_length(value)), 0)::bigint FROM "
        "(SELECT value FROM keyval WHERE scope = $1 AND owner = $2 FOR UPDATE) AS mine",
        params);
    if (!rows) return unexpected(rows.error());
    int64_t total = rows->rows() ? rows->int64(0, 0) : 0;
    if (total > 0 && static_cast<uint64_t>(total) > max_user_bytes)
      return unexpected(PgError{false, keyval_over_quota(max_user_bytes).message, std::string(kOverQuota)});
  }
  return {};
}

Result<uint64_t, PgError> remove(PgConnection& db, const KeyvalOwner& owner, const std::string& key) {
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user), PgParam::text(key)};
  auto r = db.run("DELETE FROM keyval WHERE scope = $1 AND owner = $2 AND key = $3", params);
  if (!r) return unexpected(r.error());
  return r->affected();
}

Result<uint64_t, PgError> remove_user(PgConnection& db, const KeyvalOwner& owner) {
  PgParam params[] = {PgParam::text(owner.scope), PgParam::text(owner.user)};
  auto r = db.run("DELETE FROM keyval WHERE scope = $1 AND owner = $2", params);
  if (!r) return unexpected(r.error());
  return r->affected();
}

}  // namespace postgres_keyval

namespace {

KeyvalError to_keyval_error(const PgError& e) {
  if (e.sqlstate == postgres_keyval::kOverQuota) return KeyvalError{"policy-violation", e.message};
  return KeyvalError{"internal-server-error", e.message};
}

}  // namespace

PostgresKeyvalStore::PostgresKeyvalStore(std::string url, size_t max_queue)
    : link_(std::move(url), "keyval"), queue_(max_queue) {}

PostgresKeyvalStore::~PostgresKeyvalStore() { stop(); }

Result<void, Error> PostgresKeyvalStore::start() {
  std::lock_guard lock(lifecycle_);
  if (started_) return unexpected(Error{0, "keyval store already started"});
  if (auto c = link_.connect(); !c) return unexpected(Error{0, c.error().message});
  if (auto r = pg_migrate(link_.db(), "keyval", postgres_keyval::migrations()); !r) {
    link_.close();
    return unexpected(Error{0, "migrating the keyval schema: " + r.error().message});
  }
  thread_ = std::thread([this] {
    pg_store_run(
        queue_, link_, kMaxBatch, [](const KeyvalOp& op) { return op.is_read(); },
        [](KeyvalOp& op) { op.fail(KeyvalError{"internal-server-error", "the keyval database is unreachable"}); },
        [this](OpBatch<KeyvalOp>& batch) { run_batch(batch); });
  });
  started_ = true;
  return {};
}

void PostgresKeyvalStore::push(KeyvalOp&& op) {
  // A get also wakes a thread waiting to reconnect: it fails at once, not after the back-off.
  const bool read = op.is_read();
  if (!queue_.push(std::move(op), read))
    op.fail(KeyvalError{"resource-constraint", "the keyval store is stopping or its queue is full"});
}

void PostgresKeyvalStore::get(KeyvalOwner owner, std::string key, GetDone done) {
  push(KeyvalOp::make_get(std::move(owner), std::move(key), std::move(done)));
}
void PostgresKeyvalStore::put(KeyvalOwner owner, std::vector<KeyvalItem> items, uint64_t max_user_bytes,
                              KeyvalPut mode, PutDone done) {
  push(KeyvalOp::make_put(std::move(owner), std::move(items), max_user_bytes, mode, std::move(done)));
}
void PostgresKeyvalStore::remove(KeyvalOwner owner, std::string key, RemoveDone done) {
  push(KeyvalOp::make_remove(std::move(owner), std::move(key), std::move(done)));
}
void PostgresKeyvalStore::list(KeyvalOwner owner, ListDone done) {
  push(KeyvalOp::make_list(std::move(owner), std::move(done)));
}
void PostgresKeyvalStore::get_many(std::string scope, std::vector<std::string> users, std::string key,
                                   GetManyDone done) {
  push(KeyvalOp::make_get_many(std::move(scope), std::move(users), std::move(key), std::move(done)));
}
void PostgresKeyvalStore::remove_user(KeyvalOwner owner, RemoveDone done) {
  push(KeyvalOp::make_remove_user(std::move(owner), std::move(done)));
}

void PostgresKeyvalStore::map_get(MapOwner owner, MapStore::SnapshotDone done) {
  push(KeyvalOp::make_map_get(std::move(owner), std::move(done)));
}
void PostgresKeyvalStore::map_put(MapOwner owner, std::vector<MapItem> items, uint64_t max_items, ChangeDone done) {
  push(KeyvalOp::make_map_put(std::move(owner), std::move(items), max_items, std::move(done)));
}
void PostgresKeyvalStore::map_remove(MapOwner owner, std::vector<std::string> keys, ChangeDone done) {
  push(KeyvalOp::make_map_remove(std::move(owner), std::move(keys), std::move(done)));
}
void PostgresKeyvalStore::map_clear(MapOwner owner, ChangeDone done) {
  push(KeyvalOp::make_map_clear(std::move(owner), std::move(done)));
}

void PostgresKeyvalStore::requeue(OpBatch<KeyvalOp>& batch) {
  auto failed = queue_.put_back(
      batch, 0, [](const KeyvalOp& op) { return op.is_read(); }, [](KeyvalOp&) {});
  for (KeyvalOp& op : failed) op.fail(KeyvalError{"internal-server-error", "the keyval database connection was lost"});
}

// One operation's statements; what it read or changed goes into `out`.
std::optional<PgError> PostgresKeyvalStore::run_op(PgConnection& db, KeyvalOp& op, KeyvalOp::Outcome& out) {
  std::optional<PgError> error;
  switch (op.kind) {
    case KeyvalOp::Kind::get:
      if (auto r = postgres_keyval::get(db, op.owner, op.key); r) out.value = std::move(*r);
      else error = r.error();
      break;
    case KeyvalOp::Kind::put:
      if (auto r = postgres_keyval::put(db, op.owner, op.items, op.limit, op.mode); !r) error = r.error();
      break;
    case KeyvalOp::Kind::remove:
      if (auto r = postgres_keyval::remove(db, op.owner, op.key); r) out.removed = *r;
      else error = r.error();
      break;
    case KeyvalOp::Kind::remove_user:
      if (auto r = postgres_keyval::remove_user(db, op.owner); r) out.removed = *r;
      else error = r.error();
      break;
    case KeyvalOp::Kind::list:
      if (auto r = postgres_keyval::list(db, op.owner); r) out.snapshot.items = std::move(*r);
      else error = r.error();
      break;
    case KeyvalOp::Kind::get_many:
      if (auto r = postgres_keyval::get_many(db, op.owner.scope, op.keys, op.key); r)
        out.snapshot.items = std::move(*r);
      else error = r.error();
      break;
    case KeyvalOp::Kind::map_get:
      if (auto r = postgres_map::get(db, op.owner); r) out.snapshot = std::move(*r);
      else error = r.error();
      break;
    case KeyvalOp::Kind::map_put:
      if (auto r = postgres_map::put(db, op.owner, op.items, op.limit); r) out.change = *r;
      else error = r.error();
      break;
    case KeyvalOp::Kind::map_remove:
      if (auto r = postgres_map::remove(db, op.owner, op.keys); r) out.change = *r;
      else error = r.error();
      break;
    case KeyvalOp::Kind::map_clear:
      if (auto r = postgres_map::clear(db, op.owner); r) out.change = *r;
      else error = r.error();
      break;
  }
  return error;
}

void PostgresKeyvalStore::run_batch(OpBatch<KeyvalOp>& batch) {
  if (std::all_of(batch.begin(), batch.end(), [](const KeyvalOp& op) { return op.is_read(); }))
    return run_reads(batch);
  PgConnection& db = link_.db();
  if (auto begun = db.exec("BEGIN"); !begun) {
    if (!db.broken()) link_.drop();  // a connection that cannot begin is of no use
    requeue(batch);
    return;
  }
  std::vector<KeyvalOp::Outcome> outcomes(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    KeyvalOp& op = batch[i];
    // A savepoint per operation: an error (over quota, a failed statement) voids only it,
    // not PostgreSQL's whole transaction.
    if (auto sp = db.exec("SAVEPOINT kv_op"); !sp) {
      if (!db.broken()) link_.drop();
      requeue(batch);
      return;
    }
    KeyvalOp::Outcome& out = outcomes[i];
    std::optional<PgError> error = run_op(db, op, out);
    if ((error && error->broken) || db.broken()) {
      requeue(batch);
      return;
    }
    auto ended = db.exec(error ? "ROLLBACK TO SAVEPOINT kv_op" : "RELEASE SAVEPOINT kv_op");
    if (!ended) {
      if (!db.broken()) link_.drop();
      requeue(batch);
      return;
    }
    if (error) out.error = to_keyval_error(*error);
  }
  auto committed = db.exec("COMMIT");
  if (!committed) {
    // Lost during the commit: it may have landed or not; the writes run again (they are
    // idempotent), the gets fail. A commit refused outright stored nothing.
    if (committed.error().broken || db.broken()) {
      requeue(batch);
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i)
      if (!batch[i].is_read()) outcomes[i].error = KeyvalError{"internal-server-error", committed.error().message};
  }
  for (size_t i = 0; i < batch.size(); ++i) batch[i].complete(std::move(outcomes[i]));
}

// A batch of reads alone (a login's keyval and map reads, the probes' get_many) needs
// no transaction: each statement runs in its own (autocommit), an error voids only its
// operation, and BEGIN, a SAVEPOINT and a RELEASE per operation and COMMIT (2 + 2n round
// trips to the server, each a wait on this thread) are not sent. Nothing is lost to
// consistency: at READ COMMITTED each statement of a transaction took a snapshot of
// its own anyway.
void PostgresKeyvalStore::run_reads(OpBatch<KeyvalOp>& batch) {
  PgConnection& db = link_.db();
  std::vector<KeyvalOp::Outcome> outcomes(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    std::optional<PgError> error = run_op(db, batch[i], outcomes[i]);
    if ((error && error->broken) || db.broken()) {
      requeue(batch);
      return;
    }
    if (error) outcomes[i].error = to_keyval_error(*error);
  }
  for (size_t i = 0; i < batch.size(); ++i) batch[i].complete(std::move(outcomes[i]));
}

void PostgresKeyvalStore::stop() {
  std::lock_guard lock(lifecycle_);
  queue_.stop(stop_grace_);
  if (thread_.joinable()) thread_.join();
  for (KeyvalOp& op : queue_.drain()) op.fail(KeyvalError{"internal-server-error", "the keyval store stopped"});
  link_.close();
}

}  // namespace parley::storage
