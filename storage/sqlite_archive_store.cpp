#include "storage/sqlite_archive_store.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <cstdio>
#include <exception>
#include <utility>

namespace parley::storage {

namespace sqlite_archive {

namespace {

constexpr std::array<std::string_view, 1> kMigrations = {
    // The id is the rowid: ids are store-wide unique and increasing, so an append adds at
    // the right edge of the table's b-tree (the cheapest insert SQLite has), and expiry is a
    // range of the oldest rowids (an id is never below its entry's timestamp in
    // microseconds). A page of one archive is a range scan of archive_by_owner; with= of
    // archive_by_with.
    "CREATE TABLE archive (id INTEGER PRIMARY KEY, scope TEXT NOT NULL, owner TEXT NOT NULL, ts INTEGER NOT NULL, "
    "with_bare TEXT NOT NULL, with_full TEXT NOT NULL, payload BLOB NOT NULL);"
    "CREATE INDEX archive_by_owner ON archive (scope, owner, id);"
    "CREATE INDEX archive_by_with ON archive (scope, owner, with_bare, id);",
};

constexpr int64_t kMaxId = std::numeric_limits<int64_t>::max();

ArchiveError internal(const Error& e) { return ArchiveError{"internal-server-error", e.message}; }

// The filters of a query: parameters ?1..?8 (see bind_filters).
std::string filters(const ArchiveQuery& q) {
  std::string sql = " WHERE scope = ?1 AND owner = ?2";
  if (!q.with.empty()) sql += q.with.find('/') == std::string::npos ? " AND with_bare = ?3" : " AND with_full = ?3";
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

Result<void, Error> bind_filters(Statement& st, const ArchiveQuery& q) {
  if (auto r = st.bind(1, std::string_view(q.key.scope)); !r) return r;
  if (auto r = st.bind(2, std::string_view(q.key.owner)); !r) return r;
  if (!q.with.empty())
    if (auto r = st.bind(3, std::string_view(q.with)); !r) return r;
  if (auto r = st.bind(4, q.start_us); !r) return r;
  if (auto r = st.bind(5, q.end_us); !r) return r;
  if (auto r = st.bind(6, static_cast<int64_t>(q.after_id)); !r) return r;
  if (auto r = st.bind(7, q.before_id == 0 ? kMaxId : static_cast<int64_t>(q.before_id)); !r) return r;
  if (q.by_ids)
    if (auto r = st.bind(8, std::string_view(id_list(q.ids))); !r) return r;
  return {};
}

Result<int64_t, Error> count(Database& db, const ArchiveQuery& q, std::string_view extra, int64_t bound) {
  auto st = db.prepare("SELECT COUNT(*) FROM archive" + filters(q) + std::string(extra));
  if (!st) return unexpected(st.error());
  if (auto r = bind_filters(**st, q); !r) return unexpected(r.error());
  if (!extra.empty())
    if (auto r = (*st)->bind(9, bound); !r) return unexpected(r.error());
  auto row = (*st)->step();
  if (!row) return unexpected(row.error());
  int64_t n = *row ? (*st)->column_int64(0) : 0;
  (*st)->reset();
  return n;
}

// Whether `id` is an entry of the archive (RSM and the form's id bounds name one).
Result<bool, Error> exists(Database& db, const ArchiveKey& key, uint64_t id) {
  auto st = db.prepare("SELECT 1 FROM archive WHERE scope = ?1 AND owner = ?2 AND id = ?3");
  if (!st) return unexpected(st.error());
  Statement& s = **st;
  if (auto r = s.bind(1, std::string_view(key.scope)); !r) return unexpected(r.error());
  if (auto r = s.bind(2, std::string_view(key.owner)); !r) return unexpected(r.error());
  if (auto r = s.bind(3, static_cast<int64_t>(id)); !r) return unexpected(r.error());
  auto row = s.step();
  if (!row) return unexpected(row.error());
  bool found = *row;
  s.reset();
  return found;
}

}  // namespace

std::span<const std::string_view> migrations() { return kMigrations; }

Result<void, ArchiveError> append(Database& db, const ArchiveKey& key, const ArchiveEntry& entry) {
  if (entry.id == 0 || entry.id > static_cast<uint64_t>(kMaxId))
    return unexpected(ArchiveError{"internal-server-error", "archive id out of range"});
  auto st = db.prepare(
      "INSERT INTO archive (scope, owner, id, ts, with_bare, with_full, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!st) return unexpected(internal(st.error()));
  Statement& s = **st;
  std::string bare = archive_bare(entry.with);
  Result<void, Error> r = s.bind(1, std::string_view(key.scope));
  if (r) r = s.bind(2, std::string_view(key.owner));
  if (r) r = s.bind(3, static_cast<int64_t>(entry.id));
  if (r) r = s.bind(4, entry.timestamp_us);
  if (r) r = s.bind(5, std::string_view(bare));
  if (r) r = s.bind(6, std::string_view(entry.with));
  if (r) r = s.bind_blob(7, entry.payload);
  if (r) r = s.run();
  s.reset();
  if (!r) return unexpected(internal(r.error()));
  return {};
}

Result<ArchivePage, ArchiveError> query(Database& db, const ArchiveQuery& q) {
  for (uint64_t id : {q.after_id, q.before_id, q.page_after, q.page_before}) {
    if (id == 0) continue;
    if (id > static_cast<uint64_t>(kMaxId)) return unexpected(ArchiveError{"item-not-found", "no such id"});
    auto found = exists(db, q.key, id);
    if (!found) return unexpected(internal(found.error()));
    if (!*found) return unexpected(ArchiveError{"item-not-found", "no entry with id " + std::to_string(id)});
  }
  // XEP-0313 section 4.1.2: every id named must be in the archive.
  if (q.by_ids)
    for (uint64_t id : q.ids) {
      auto found = id != 0 && id <= static_cast<uint64_t>(kMaxId) ? exists(db, q.key, id) : Result<bool, Error>(false);
      if (!found) return unexpected(internal(found.error()));
      if (!*found) return unexpected(ArchiveError{"item-not-found", "no entry with id " + std::to_string(id)});
    }
  ArchivePage page;
  auto total = count(db, q, "", 0);
  if (!total) return unexpected(internal(total.error()));
  page.total = static_cast<uint64_t>(*total);
  if (q.max == 0) {
    page.complete = page.total == 0;
    return page;
  }
  std::string sql = "SELECT id, ts, with_full, payload FROM archive" + filters(q);
  sql += q.from_end ? " AND id < ?9 ORDER BY id DESC LIMIT ?10" : " AND id > ?9 ORDER BY id ASC LIMIT ?10";
  auto st = db.prepare(sql);
  if (!st) return unexpected(internal(st.error()));
  Statement& s = **st;
  int64_t bound = q.from_end ? (q.page_before == 0 ? kMaxId : static_cast<int64_t>(q.page_before))
                             : static_cast<int64_t>(q.page_after);
  Result<void, Error> r = bind_filters(s, q);
  if (r) r = s.bind(9, bound);
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
    auto before = count(db, q, " AND id < ?9", static_cast<int64_t>(page.entries.front().id));
    if (!before) return unexpected(internal(before.error()));
    page.index = static_cast<uint64_t>(*before);
  }
  return page;
}

Result<uint64_t, ArchiveError> remove(Database& db, const ArchiveKey& key, int64_t before_us) {
  // Every archive of the scope (expiry): the entries older than before_us have ids below
  // it too (the store never gives an id below the entry's timestamp), so the scan is the
  // range of rowids under before_us, not the whole table. An entry whose id is above its
  // timestamp (the clock went back) goes at a later run.
  auto st = db.prepare(key.owner.empty() ? "DELETE FROM archive WHERE id < ?2 AND ts < ?2 AND scope = ?1"
                                         : "DELETE FROM archive WHERE scope = ?1 AND owner = ?3 AND ts < ?2");
  if (!st) return unexpected(internal(st.error()));
  Statement& s = **st;
  Result<void, Error> r = s.bind(1, std::string_view(key.scope));
  if (r) r = s.bind(2, before_us);
  if (r && !key.owner.empty()) r = s.bind(3, std::string_view(key.owner));
  if (r) r = s.run();
  s.reset();
  if (!r) return unexpected(internal(r.error()));
  return static_cast<uint64_t>(db.changes());
}

}  // namespace sqlite_archive

SqliteArchiveStore::SqliteArchiveStore(std::string path, size_t max_queue)
    : path_(std::move(path)), queue_(max_queue) {}

SqliteArchiveStore::~SqliteArchiveStore() { stop(); }

Result<void, Error> SqliteArchiveStore::start() {
  std::lock_guard lock(lifecycle_);
  if (started_) return unexpected(Error{0, "archive store already started"});
  auto db = Database::open(path_, Database::Mode::read_write);
  if (!db) return unexpected(std::move(db).error());
  if (auto r = (*db)->migrate("archive", sqlite_archive::migrations()); !r) return r;
  // Ids go on above every id stored, even if the clock went back meanwhile.
  auto st = (*db)->prepare("SELECT MAX(id) FROM archive");
  if (!st) return unexpected(st.error());
  auto row = (*st)->step();
  if (!row) return unexpected(row.error());
  uint64_t max_id = *row && !(*st)->column_is_null(0) ? static_cast<uint64_t>((*st)->column_int64(0)) : 0;
  (*st)->reset();
  queue_.locked([&] { last_id_ = std::max(last_id_, max_id); });
  db_ = std::move(*db);
  thread_ = std::thread([this] { run(); });
  started_ = true;
  return {};
}

void SqliteArchiveStore::fail(Op& op, ArchiveError error) {
  try {
    switch (op.kind) {
      case Op::Kind::append:
        if (op.on_append) op.on_append(unexpected(std::move(error)));
        break;
      case Op::Kind::query:
        if (op.on_query) op.on_query(unexpected(std::move(error)));
        break;
      case Op::Kind::remove:
        if (op.on_remove) op.on_remove(unexpected(std::move(error)));
        break;
    }
  } catch (...) {
  }
}

bool SqliteArchiveStore::push(Op&& op, uint64_t* id) {
  bool queued = queue_.push(std::move(op), [&](Op& queued_op) {
    if (id == nullptr) return;
    // The id is made under the queue's lock, as the append takes its place: ids
    // increase in queue order, which is the order of the commits and of the queries.
    uint64_t now = queued_op.entry.timestamp_us > 0 ? static_cast<uint64_t>(queued_op.entry.timestamp_us) : 0;
    last_id_ = std::max(last_id_ + 1, now);
    queued_op.entry.id = *id = last_id_;
  });
  if (!queued && id == nullptr)
    fail(op, ArchiveError{"resource-constraint", "the archive store is stopping or its queue is full"});
  return queued;
}

uint64_t SqliteArchiveStore::append(ArchiveKey key, ArchiveEntry entry, AppendDone done) {
  Op op{Op::Kind::append, std::move(key), std::move(entry), {}, 0, std::move(done), {}, {}};
  uint64_t id = 0;
  return push(std::move(op), &id) ? id : 0;
}

void SqliteArchiveStore::query(ArchiveQuery query, QueryDone done) {
  Op op{Op::Kind::query, {}, {}, std::move(query), 0, {}, std::move(done), {}};
  push(std::move(op));
}

void SqliteArchiveStore::remove(ArchiveKey key, int64_t before_us, RemoveDone done) {
  Op op{Op::Kind::remove, std::move(key), {}, {}, before_us, {}, {}, std::move(done)};
  push(std::move(op));
}

void SqliteArchiveStore::run() {
  for (;;) {
    std::deque<Op> batch = queue_.take(kMaxBatch);
    if (batch.empty()) return;  // stopping, and drained
    run_batch(batch);
  }
}

void SqliteArchiveStore::run_batch(std::deque<Op>& batch) {
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
        outcomes[i].appended = sqlite_archive::append(*db_, op.key, op.entry);
        break;
      case Op::Kind::query:
        outcomes[i].page = sqlite_archive::query(*db_, op.query);
        break;
      case Op::Kind::remove:
        outcomes[i].removed = sqlite_archive::remove(*db_, op.key, op.before_us);
        break;
    }
  }
  auto committed = tx->commit();
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    Outcome& out = outcomes[i];
    try {
      switch (op.kind) {
        case Op::Kind::append:
          // A failed commit stored nothing of the batch: every write says so.
          if (!committed) out.appended = unexpected(ArchiveError{"internal-server-error", committed.error().message});
          if (op.on_append) op.on_append(std::move(*out.appended));
          break;
        case Op::Kind::query:
          if (op.on_query) op.on_query(std::move(*out.page));
          break;
        case Op::Kind::remove:
          if (!committed) out.removed = unexpected(ArchiveError{"internal-server-error", committed.error().message});
          if (op.on_remove) op.on_remove(std::move(*out.removed));
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
  db_.reset();
}

}  // namespace parley::storage
