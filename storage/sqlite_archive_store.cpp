#include "storage/sqlite_archive_store.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <limits>
#include <cstdio>
#include <exception>
#include <optional>
#include <utility>

namespace parley::storage {

namespace sqlite_archive {

namespace {

constexpr std::array<std::string_view, 2> kMigrations = {
    // The id is the rowid: ids are store-wide unique and increasing, so an append adds at
    // the right edge of the table's b-tree (the cheapest insert SQLite has), and expiry is a
    // range of the oldest rowids (an id is never below its entry's timestamp in
    // microseconds). A page of one archive is a range scan of archive_by_owner; with= of
    // archive_by_with.
    "CREATE TABLE archive (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, owner TEXT NOT NULL, ts INTEGER NOT NULL, "
    "with_bare TEXT NOT NULL, with_full TEXT NOT NULL, payload BLOB NOT NULL);"
    "CREATE INDEX archive_by_owner ON archive (scope, owner, id);"
    "CREATE INDEX archive_by_with ON archive (scope, owner, with_bare, id);",
    // Integer keys in the indexes. Each append writes a leaf of both indexes at its owner's
    // place (and every commit writes each page it changed to the WAL, checksummed): keyed by
    // (scope, owner TEXT, ...) an index entry was ~50 bytes, by (owner_id, ...) it is ~10,
    // so the indexes are a fraction of the pages, the trees shallower and the comparisons
    // integer ones (BENCHMARKS.md, "Session 12: the SQLite archive's append"). The old rows
    // are moved in id order (right-edge inserts), the table rebuilt under its old name.
    "CREATE TABLE archive_owner (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, owner TEXT NOT NULL, "
    "UNIQUE (scope, owner));"
    "CREATE TABLE archive_jid (id INTEGER PRIMARY KEY, jid TEXT NOT NULL UNIQUE);"
    "INSERT INTO archive_owner (scope, owner) SELECT DISTINCT scope, owner FROM archive ORDER BY scope, owner;"
    "INSERT INTO archive_jid (jid) SELECT DISTINCT with_bare FROM archive ORDER BY with_bare;"
    "CREATE TABLE archive_v2 (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, ts INTEGER NOT NULL, "
    "with_id INTEGER NOT NULL, with_full TEXT NOT NULL, payload BLOB NOT NULL);"
    "INSERT INTO archive_v2 (id, owner_id, ts, with_id, with_full, payload) "
    "SELECT a.id, o.id, a.ts, j.id, a.with_full, a.payload FROM archive a "
    "JOIN archive_owner o ON o.scope = a.scope AND o.owner = a.owner JOIN archive_jid j ON j.jid = a.with_bare "
    "ORDER BY a.id;"
    "DROP TABLE archive;"
    "ALTER TABLE archive_v2 RENAME TO archive;"
    "CREATE INDEX archive_by_owner ON archive (owner_id, id);"
    "CREATE INDEX archive_by_with ON archive (owner_id, with_id, id);",
};

constexpr int64_t kMaxId = std::numeric_limits<int64_t>::max();

ArchiveError internal(const Error& e) { return ArchiveError{"internal-server-error", e.message}; }

// The integer keys of a query (0: none stored, so nothing matches).
struct Ids {
  int64_t owner = 0;
  int64_t with = 0;
};

Result<Ids, Error> ids_of(Database& db, Keys& keys, const ArchiveQuery& q) {
  Ids ids;
  auto owner = keys.owner(db, q.key, false);
  if (!owner) return unexpected(owner.error());
  ids.owner = *owner;
  if (!q.with.empty() && ids.owner != 0) {
    auto with = keys.jid(db, archive_bare(q.with), false);
    if (!with) return unexpected(with.error());
    ids.with = *with;
  }
  return ids;
}

// The table and filters of a query: parameters ?1..?8 (see bind_filters). The index is
// named: with the id bounds on both sides, SQLite's planner (no statistics) takes
// archive_by_owner for a page with `with` too, reading every entry of the owner.
std::string filters(const ArchiveQuery& q) {
  std::string sql = q.with.empty() ? " FROM archive INDEXED BY archive_by_owner WHERE owner_id = ?1"
                                   : " FROM archive INDEXED BY archive_by_with WHERE owner_id = ?1";
  if (!q.with.empty()) {
    sql += " AND with_id = ?3";
    if (q.with.find('/') != std::string::npos) sql += " AND with_full = ?2";
  }
  sql += " AND ts >= ?4 AND ts <= ?5 AND id > ?6 AND id < ?7";
  if (q.by_ids) sql += " AND id IN (SELECT value FROM json_each(?8))";
  return sql;
}

std::string id_list(const std::vector<uint64_t>& ids) {
  std::string json = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) json += ',';
    json += std::to_string(ids[i]);
  }
  return json + "]";
}

// The id range is ?6 < id < ?7, the query's bounds and the caller's (`above`, `below`; 0:
// none) folded into one pair: SQLite ranges its index scan by one lower and one upper
// bound of a column and only filters by any other, so a page after an id, or a count up to
// or from a page, given as a condition of its own scanned the owner's entries from the
// set's start (every older entry per page, the whole archive for the last page's index).
Result<void, Error> bind_filters(Statement& st, const ArchiveQuery& q, const Ids& ids, uint64_t above = 0,
                                 uint64_t below = 0) {
  if (auto r = st.bind(1, ids.owner); !r) return r;
  if (!q.with.empty()) {
    if (auto r = st.bind(3, ids.with); !r) return r;
    if (q.with.find('/') != std::string::npos)
      if (auto r = st.bind(2, std::string_view(q.with)); !r) return r;
  }
  if (auto r = st.bind(4, q.start_us); !r) return r;
  if (auto r = st.bind(5, q.end_us); !r) return r;
  uint64_t lower = std::max(ids_above(q), above);
  uint64_t upper = q.before_id == 0 ? static_cast<uint64_t>(kMaxId) : q.before_id;
  if (below != 0) upper = std::min(upper, below);
  if (auto r = st.bind(6, static_cast<int64_t>(lower)); !r) return r;
  if (auto r = st.bind(7, static_cast<int64_t>(upper)); !r) return r;
  if (q.by_ids)
    if (auto r = st.bind(8, std::string_view(id_list(q.ids))); !r) return r;
  return {};
}

// The entries of the query's set within the ids bounds `above` < id < `below` (0: none),
// at most `limit` of them (0: all).
Result<int64_t, Error> count(Database& db, const ArchiveQuery& q, const Ids& ids, uint64_t above = 0,
                             uint64_t below = 0, uint64_t limit = 0) {
  auto st = db.prepare(limit == 0 ? "SELECT COUNT(*)" + filters(q)
                                  : "SELECT COUNT(*) FROM (SELECT 1" + filters(q) + " LIMIT ?11)");
  if (!st) return unexpected(st.error());
  if (auto r = bind_filters(**st, q, ids, above, below); !r) return unexpected(r.error());
  if (limit != 0)
    if (auto r = (*st)->bind(11, static_cast<int64_t>(limit)); !r) return unexpected(r.error());
  auto row = (*st)->step();
  if (!row) return unexpected(row.error());
  int64_t n = *row ? (*st)->column_int64(0) : 0;
  (*st)->reset();
  return n;
}

// Whether `id` is an entry of the archive (RSM and the form's id bounds name one).
Result<bool, Error> exists(Database& db, int64_t owner_id, uint64_t id) {
  auto st = db.prepare("SELECT owner_id = ?1 FROM archive WHERE id = ?2");
  if (!st) return unexpected(st.error());
  Statement& s = **st;
  if (auto r = s.bind(1, owner_id); !r) return unexpected(r.error());
  if (auto r = s.bind(2, static_cast<int64_t>(id)); !r) return unexpected(r.error());
  auto row = s.step();
  if (!row) return unexpected(row.error());
  bool found = *row && s.column_int64(0) != 0;
  s.reset();
  return found;
}

// The id of one row of a key table, looked up by `bind` (SELECT), inserted when absent
// and `create` (INSERT).
template <class Bind>
Result<int64_t, Error> key_id(Database& db, std::string_view select, std::string_view insert, bool create,
                              const Bind& bind) {
  auto st = db.prepare(select);
  if (!st) return unexpected(st.error());
  if (auto r = bind(**st); !r) return unexpected(r.error());
  auto row = (*st)->step();
  if (!row) {
    (*st)->reset();
    return unexpected(row.error());
  }
  int64_t id = *row ? (*st)->column_int64(0) : 0;
  (*st)->reset();
  if (id != 0 || !create) return id;
  auto ins = db.prepare(insert);
  if (!ins) return unexpected(ins.error());
  Result<void, Error> r = bind(**ins);
  if (r) r = (*ins)->run();
  (*ins)->reset();
  if (!r) return unexpected(r.error());
  return db.last_insert_rowid();
}

}  // namespace

std::span<const std::string_view> migrations() { return kMigrations; }

Result<int64_t, Error> Keys::owner(Database& db, std::string_view scope, std::string_view owner, bool create) {
  ArchiveKeyIds::owner_key(key_, scope, owner);
  return lookup(db, create, true);
}

Result<int64_t, Error> Keys::jid(Database& db, std::string_view bare, bool create) {
  ArchiveKeyIds::jid_key(key_, bare);
  return lookup(db, create, false);
}

Result<int64_t, Error> Keys::lookup(Database& db, bool create, bool is_owner) {
  const std::string& key = key_;
  if (const int64_t known = ids_.find(key); known != 0) return known;
  Result<int64_t, Error> id(int64_t{0});
  if (is_owner) {
    const auto nl = key.find('\n');
    const std::string_view scope = std::string_view(key).substr(1, nl - 1);
    const std::string_view owner = std::string_view(key).substr(nl + 1);
    id = key_id(db, "SELECT id FROM archive_owner WHERE scope = ?1 AND owner = ?2",
                "INSERT INTO archive_owner (scope, owner) VALUES (?1, ?2)", create, [&](Statement& s) {
                  Result<void, Error> r = s.bind(1, scope);
                  if (r) r = s.bind(2, owner);
                  return r;
                });
  } else {
    const std::string_view bare = std::string_view(key).substr(1);
    id = key_id(db, "SELECT id FROM archive_jid WHERE jid = ?1", "INSERT INTO archive_jid (jid) VALUES (?1)", create,
                [&](Statement& s) { return s.bind(1, bare); });
  }
  if (!id || *id == 0) return id;  // an unknown key is not cached: it may be made later
  // Outside a transaction the statement committed by itself.
  ids_.add(key, *id, db.in_transaction());
  return id;
}

void Keys::end_transaction(bool committed) {
  ids_.end_transaction(committed);
  if (!committed) totals_.clear();  // they counted what was rolled back
}

Result<void, ArchiveError> append(Database& db, Keys& keys, const ArchiveKey& key, const ArchiveEntry& entry) {
  PackedAppend packed(ArchiveAppend{key.scope, key.owner, entry.with, entry.payload, entry.timestamp_us});
  packed.id = entry.id;
  return append(db, keys, packed);
}

Result<void, ArchiveError> append(Database& db, Keys& keys, const PackedAppend& entry) {
  if (entry.id == 0 || entry.id > static_cast<uint64_t>(kMaxId))
    return unexpected(ArchiveError{"internal-server-error", "archive id out of range"});
  auto owner = keys.owner(db, entry.scope(), entry.owner(), true);
  if (!owner) return unexpected(internal(owner.error()));
  auto with = keys.jid(db, archive_bare_view(entry.with()), true);
  if (!with) return unexpected(internal(with.error()));
  auto st = db.prepare("INSERT INTO archive (owner_id, id, ts, with_id, with_full, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st) return unexpected(internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = s.bind(1, *owner);
  if (r) r = s.bind(2, static_cast<int64_t>(entry.id));
  if (r) r = s.bind(3, entry.timestamp_us);
  if (r) r = s.bind(4, *with);
  // The entry outlives the step: bound without copies.
  if (r) r = s.bind_unowned(5, entry.with());
  if (r) r = s.bind_blob_unowned(6, entry.payload());
  if (r) r = s.run();
  s.reset();
  if (!r) return unexpected(internal(r.error()));
  keys.totals().appended(entry.scope(), entry.owner());
  return {};
}

Result<ArchivePage, ArchiveError> query(Database& db, Keys& keys, const ArchiveQuery& q) {
  auto resolved = ids_of(db, keys, q);
  if (!resolved) return unexpected(internal(resolved.error()));
  const Ids& ids = *resolved;
  for (uint64_t id : {q.after_id, q.before_id, q.page_after, q.page_before}) {
    if (id == 0) continue;
    if (id > static_cast<uint64_t>(kMaxId)) return unexpected(ArchiveError{"item-not-found", "no such id"});
    auto found = exists(db, ids.owner, id);
    if (!found) return unexpected(internal(found.error()));
    if (!*found) return unexpected(ArchiveError{"item-not-found", "no entry with id " + std::to_string(id)});
  }
  // XEP-0313 section 4.1.2: every id named must be in the archive.
  if (q.by_ids)
    for (uint64_t id : q.ids) {
      auto found = id != 0 && id <= static_cast<uint64_t>(kMaxId) ? exists(db, ids.owner, id) : Result<bool, Error>(false);
      if (!found) return unexpected(internal(found.error()));
      if (!*found) return unexpected(ArchiveError{"item-not-found", "no entry with id " + std::to_string(id)});
    }
  ArchivePage page;
  auto counter = [&](const ArchiveQuery& set, uint64_t above, uint64_t below, uint64_t limit) {
    return count(db, set, ids, above, below, limit);
  };
  // The whole archive's size is kept (archive_totals.hpp): a COUNT of it read every entry.
  auto total = set_total(&keys.totals(), q, counter);
  if (!total) return unexpected(internal(total.error()));
  page.total = *total;
  if (q.max == 0) {
    page.complete = page.total == 0;
    return page;
  }
  std::string sql = "SELECT id, ts, with_full, payload" + filters(q);
  sql += q.from_end ? " ORDER BY id DESC LIMIT ?10" : " ORDER BY id ASC LIMIT ?10";
  auto st = db.prepare(sql);
  if (!st) return unexpected(internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = q.from_end ? bind_filters(s, q, ids, 0, q.page_before) : bind_filters(s, q, ids, q.page_after);
  if (r) r = s.bind(10, static_cast<int64_t>(q.max) + 1);  // one more: whether the set goes on
  if (!r) return unexpected(internal(r.error()));
  while (true) {
    auto row = s.step();
    if (!row) {
      s.reset();
      return unexpected(internal(row.error()));
    }
    if (!*row) break;
    if (page.entries.size() == q.max) {
      page.complete = false;
      s.reset();
      break;
    }
    ArchiveEntry e;
    e.id = static_cast<uint64_t>(s.column_int64(0));
    e.timestamp_us = s.column_int64(1);
    e.with = std::string(s.column_text(2));
    e.payload = std::string(s.column_blob(3));
    page.entries.push_back(std::move(e));
    page.complete = true;
  }
  s.reset();
  if (page.entries.empty()) page.complete = true;
  if (q.from_end) std::reverse(page.entries.begin(), page.entries.end());
  if (!page.entries.empty()) {
    auto index = page_index(q, page.total, page.entries.front().id, counter);
    if (!index) return unexpected(internal(index.error()));
    page.index = *index;
  }
  return page;
}

Result<uint64_t, ArchiveError> remove(Database& db, Keys& keys, const ArchiveKey& key, int64_t before_us) {
  // Every archive of the scope (expiry): the entries older than before_us have ids below
  // it too (the store never gives an id below the entry's timestamp), so the scan is the
  // range of rowids under before_us, not the whole table. An entry whose id is above its
  // timestamp (the clock went back) goes at a later run. The owners' and JIDs' ids stay
  // (a few bytes each; the caches hold them).
  int64_t owner_id = 0;
  if (!key.owner.empty()) {
    auto owner = keys.owner(db, key, false);
    if (!owner) return unexpected(internal(owner.error()));
    if (*owner == 0) return uint64_t{0};
    owner_id = *owner;
  }
  if (key.owner.empty())
    keys.totals().clear();
  else
    keys.totals().forget(key);
  auto st = db.prepare(key.owner.empty()
                           ? "DELETE FROM archive WHERE id < ?2 AND ts < ?2 AND owner_id IN "
                             "(SELECT id FROM archive_owner WHERE scope = ?1)"
                           : "DELETE FROM archive WHERE owner_id = ?3 AND ts < ?2");
  if (!st) return unexpected(internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = key.owner.empty() ? s.bind(1, std::string_view(key.scope)) : s.bind(3, owner_id);
  if (r) r = s.bind(2, before_us);
  if (r) r = s.run();
  s.reset();
  if (!r) return unexpected(internal(r.error()));
  return static_cast<uint64_t>(db.changes());
}

}  // namespace sqlite_archive

SqliteArchiveStore::SqliteArchiveStore(std::string path, size_t max_queue)
    : path_(std::move(path)), queue_(max_queue, kMaxBatch) {}

SqliteArchiveStore::~SqliteArchiveStore() { stop(); }

Result<void, Error> SqliteArchiveStore::start() {
  std::lock_guard lock(lifecycle_);
  if (started_) return unexpected(Error{0, "archive store already started"});
  auto db = Database::open(path_, Database::Mode::read_write);
  if (!db) return unexpected(std::move(db).error());
  if (auto r = (*db)->migrate("archive", sqlite_archive::migrations()); !r) return r;
  // SQLite keeps the WAL file at its largest size; a big transaction (the step 2 migration
  // of a large archive) would leave it that big until parleyd stops. Cut back to 64 MiB
  // once a checkpoint has emptied it (a busy archive's WAL stays near 4 MiB).
  if (auto r = (*db)->exec("PRAGMA journal_size_limit=67108864"); !r) return r;
  // A batch of thousands of appends dirties a leaf of both indexes for most owners it
  // names: with SQLite's default 2 MiB of cache it spilled pages to the WAL in the middle
  // of the transaction and wrote them again at the commit (BENCHMARKS.md, "Session 17").
  // The cache grows only as pages are used.
  if (auto r = (*db)->exec("PRAGMA cache_size=-" + std::to_string(kCacheKiB)); !r) return r;
  // Ids go on above every id stored, even if the clock went back meanwhile.
  auto st = (*db)->prepare("SELECT MAX(id) FROM archive");
  if (!st) return unexpected(st.error());
  auto row = (*st)->step();
  if (!row) return unexpected(row.error());
  uint64_t max_id = *row && !(*st)->column_is_null(0) ? static_cast<uint64_t>((*st)->column_int64(0)) : 0;
  (*st)->reset();
  queue_.locked([&] { last_id_ = std::max(last_id_, max_id); });
  db_ = std::move(*db);
  checkpointer_ = std::make_unique<WalCheckpointer>(path_);
  if (auto r = checkpointer_->start(*db_); !r) {
    checkpointer_.reset();
    db_.reset();
    return r;
  }
  thread_ = std::thread([this] { run(); });
  started_ = true;
  return {};
}

void SqliteArchiveStore::fail(Op& op, ArchiveError error) {
  try {
    switch (op.kind) {
      case Op::Kind::append:
        completing(op.entry.id);
        if (op.on_append) op.on_append(unexpected(std::move(error)));
        break;
      case Op::Kind::query:
        if (op.request->on_query) op.request->on_query(unexpected(std::move(error)));
        break;
      case Op::Kind::remove:
        if (op.request->on_remove) op.request->on_remove(unexpected(std::move(error)));
        break;
    }
  } catch (...) {
  }
}

void SqliteArchiveStore::give_id(Op& op, uint64_t* id) {
  if (id == nullptr) return;
  // The id is made under the queue's lock, as the append takes its place: ids increase
  // in queue order, which is the order of the commits and of the queries.
  uint64_t now = op.entry.timestamp_us > 0 ? static_cast<uint64_t>(op.entry.timestamp_us) : 0;
  last_id_ = std::max(last_id_ + 1, now);
  op.entry.id = *id = last_id_;
}

bool SqliteArchiveStore::push(Op&& op, uint64_t* id) {
  bool queued = queue_.push(std::move(op), [&](Op& queued_op) { give_id(queued_op, id); });
  if (!queued && id == nullptr)
    fail(op, ArchiveError{"resource-constraint", "the archive store is stopping or its queue is full"});
  return queued;
}

uint64_t SqliteArchiveStore::append(const ArchiveAppend& entry, AppendDone done) {
  uint64_t id = 0;
  const bool queued = queue_.push_built(
      [&](std::string buffer) {
        return Op{Op::Kind::append, PackedAppend(entry, std::move(buffer)), std::move(done), nullptr};
      },
      [&](Op& op) { give_id(op, &id); });
  return queued ? id : 0;
}

void SqliteArchiveStore::query(ArchiveQuery query, QueryDone done) {
  auto request = std::make_unique<Request>();
  request->query = std::move(query);
  request->on_query = std::move(done);
  push(Op{Op::Kind::query, {}, {}, std::move(request)});
}

void SqliteArchiveStore::remove(ArchiveKey key, int64_t before_us, RemoveDone done) {
  auto request = std::make_unique<Request>();
  request->key = std::move(key);
  request->before_us = before_us;
  request->on_remove = std::move(done);
  push(Op{Op::Kind::remove, {}, {}, std::move(request)});
}

void SqliteArchiveStore::run() {
  // Named, so that top -H and bench/chat_mam.py tell its CPU from the loops'.
  pthread_setname_np(pthread_self(), "parley-archive");
  OpBatch<Op> batch;
  for (;;) {
    queue_.take(kMaxBatch, batch);
    if (batch.empty()) return;  // stopping, and drained
    run_batch(batch);
  }
}

void SqliteArchiveStore::run_batch(OpBatch<Op>& batch) {
  // One transaction for the batch; completions only after the commit, so that nothing is
  // reported stored before it is.
  struct Outcome {
    std::optional<Result<void, ArchiveError>> appended;
    std::optional<Result<ArchivePage, ArchiveError>> page;
    std::optional<Result<uint64_t, ArchiveError>> removed;
  };
  auto tx = db_->begin();
  if (!tx) {
    for (Op& op : batch) fail(op, ArchiveError{"internal-server-error", tx.error().message});
    return;
  }
  std::vector<Outcome> outcomes(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    switch (op.kind) {
      case Op::Kind::append:
        outcomes[i].appended = sqlite_archive::append(*db_, keys_, op.entry);
        break;
      case Op::Kind::query:
        outcomes[i].page = sqlite_archive::query(*db_, keys_, op.request->query);
        break;
      case Op::Kind::remove:
        outcomes[i].removed = sqlite_archive::remove(*db_, keys_, op.request->key, op.request->before_us);
        break;
    }
  }
  auto committed = tx->commit();
  keys_.end_transaction(committed.has_value());
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    Outcome& out = outcomes[i];
    try {
      switch (op.kind) {
        case Op::Kind::append:
          // A failed commit stored nothing of the batch: every write says so.
          if (!committed) out.appended = unexpected(ArchiveError{"internal-server-error", committed.error().message});
          completing(op.entry.id);
          if (op.on_append) op.on_append(std::move(*out.appended));
          break;
        case Op::Kind::query:
          if (op.request->on_query) op.request->on_query(std::move(*out.page));
          break;
        case Op::Kind::remove:
          if (!committed) out.removed = unexpected(ArchiveError{"internal-server-error", committed.error().message});
          if (op.request->on_remove) op.request->on_remove(std::move(*out.removed));
          break;
      }
    } catch (...) {
      // Completions must not throw; one that does loses only itself.
    }
  }
}

void SqliteArchiveStore::stop() {
  std::lock_guard lock(lifecycle_);
  queue_.stop();
  if (thread_.joinable()) thread_.join();
  for (Op& op : queue_.drain()) fail(op, ArchiveError{"internal-server-error", "the archive store stopped"});
  if (checkpointer_) checkpointer_->stop();
  db_.reset();
}

}  // namespace parley::storage
