#include "storage/database.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <string>

namespace parley::storage {

namespace {

bool only_space_or_semicolons(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ';') return false;
  }
  return true;
}

}  // namespace

Error Database::error(int rc, std::string_view what) const {
  std::string message(what);
  message += ": ";
  message += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  return Error{rc, std::move(message)};
}

Result<std::unique_ptr<Database>, Error> Database::open(const std::string& path, Mode mode) {
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= mode == Mode::read_write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
  if (mode == Mode::read_write && !path.empty() && path != ":memory:" && path.rfind("file:", 0) != 0) {
    // Owner-only from the start: the file holds credentials. SQLite gives the -wal and
    // -shm files the database file's permissions. Errors are left for SQLite to report.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // The Database owns the handle from here on, even a failed one (it must be closed too).
  std::unique_ptr<Database> db(new Database(raw, path, mode));
  if (rc != SQLITE_OK) return unexpected(db->error(rc, "open " + path));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, busy_timeout_ms);

  if (mode == Mode::read_write) {
    // journal_mode answers with the mode it got; an in-memory database says "memory".
    auto st = db->prepare("PRAGMA journal_mode=WAL");
    if (!st) return unexpected(std::move(st).error());
    auto row = (*st)->step();
    if (!row) return unexpected(std::move(row).error());
    std::string got = *row ? std::string((*st)->column_text(0)) : std::string();
    (*st)->reset();
    if (got != "wal" && got != "memory") {
      return unexpected(Error{0, "open " + path + ": cannot switch to WAL (journal mode " + got + ")"});
    }
    // Run once per connection: drop it from the cache.
    db->cache_.clear();
  }
  if (auto r = db->exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON"); !r) {
    return unexpected(r.error());
  }
  return db;
}

Database::~Database() {
  cache_.clear();  // finalize statements before the connection
  sqlite3_close_v2(db_);
}

Result<void, Error> Database::exec(std::string_view sql) {
  std::string text(sql);
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &msg);
  if (rc == SQLITE_OK) return {};
  Error e{rc, std::string("exec: ") + (msg ? msg : sqlite3_errstr(rc))};
  sqlite3_free(msg);
  return unexpected(std::move(e));
}

Result<void, Error> Database::run_cached(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt) return unexpected(std::move(stmt).error());
  auto done = (*stmt)->run();
  (*stmt)->reset();  // not left pending: a pending statement would hold its transaction open
  return done;
}

Result<Statement*, Error> Database::prepare(std::string_view sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) {
    it->second->reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                              &stmt, &tail);
  if (rc != SQLITE_OK) return unexpected(error(rc, "prepare"));
  auto owned = std::make_unique<Statement>(stmt);  // finalizes on every path below
  if (!stmt) return unexpected(Error{0, "prepare: empty statement"});
  if (tail && !only_space_or_semicolons(std::string_view(tail, sql.data() + sql.size() - tail))) {
    return unexpected(Error{0, "prepare: more than one statement in one call"});
  }
  Statement* result = owned.get();
  cache_.emplace(std::string(sql), std::move(owned));
  return result;
}

void Database::reset_statements() {
  for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s; s = sqlite3_next_stmt(db_, s)) {
    if (sqlite3_stmt_busy(s)) sqlite3_reset(s);
  }
}

bool Database::in_transaction() const { return !sqlite3_get_autocommit(db_); }

int64_t Database::changes() const { return sqlite3_changes64(db_); }

int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

Result<Database::Transaction, Error> Database::begin() {
  if (sqlite3_get_autocommit(db_)) {
    const char* sql = mode_ == Mode::read_only ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE";
    if (auto r = run_cached(sql); !r) return unexpected(r.error());
    return Transaction(this, 0);
  }
  int n = savepoint_depth_ + 1;
  if (auto r = run_cached("SAVEPOINT parley_" + std::to_string(n)); !r) return unexpected(r.error());
  savepoint_depth_ = n;
  return Transaction(this, n);
}

Result<void, Error> Database::Transaction::commit() {
  if (!db_) return unexpected(Error{0, "commit: transaction already finished"});
  Database* db = db_;
  if (savepoint_ == 0) {
    if (auto r = db->run_cached("COMMIT"); !r) {
      rollback();
      return r;
    }
  } else {
    if (auto r = db->run_cached("RELEASE parley_" + std::to_string(savepoint_)); !r) {
      rollback();
      return r;
    }
    db->savepoint_depth_ = savepoint_ - 1;
  }
  db_ = nullptr;
  return {};
}

void Database::Transaction::rollback() {
  if (!db_) return;
  Database* db = std::exchange(db_, nullptr);
  if (savepoint_ == 0) {
    // SQLite may already have rolled back by itself (e.g. after SQLITE_FULL).
    if (!sqlite3_get_autocommit(db->db_)) (void)db->exec("ROLLBACK");
  } else {
    std::string name = "parley_" + std::to_string(savepoint_);
    (void)db->exec("ROLLBACK TO " + name + "; RELEASE " + name);
    db->savepoint_depth_ = savepoint_ - 1;
  }
}

Result<int64_t, Error> Database::schema_version(std::string_view component) {
  // Read-only connections call this too: look for the table rather than create it.
  auto table = prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_versions'");
  if (!table) return unexpected(std::move(table).error());
  auto exists = (*table)->step();
  (*table)->reset();
  if (!exists) return unexpected(std::move(exists).error());
  if (!*exists) return int64_t{0};

  auto st = prepare("SELECT version FROM schema_versions WHERE component = ?1");
  if (!st) return unexpected(std::move(st).error());
  Statement& s = **st;
  if (auto b = s.bind(1, component); !b) return unexpected(b.error());
  auto row = s.step();
  if (!row) return unexpected(std::move(row).error());
  int64_t version = *row ? s.column_int64(0) : 0;
  s.reset();
  return version;
}

Result<void, Error> Database::migrate(std::string_view component, std::span<const std::string_view> steps) {
  const std::string name(component);
  if (name.empty()) return unexpected(Error{0, "migrate: empty component name"});
  const auto target = static_cast<int64_t>(steps.size());
  if (auto r = exec("CREATE TABLE IF NOT EXISTS schema_versions ("
                    "component TEXT PRIMARY KEY, version INTEGER NOT NULL)");
      !r) {
    return r;
  }
  for (;;) {
    // The version is read inside the write transaction, so two processes migrating
    // the same file at once cannot both run a step.
    auto txn = begin();
    if (!txn) return unexpected(std::move(txn).error());
    auto version = schema_version(name);
    if (!version) return unexpected(std::move(version).error());
    if (*version > target) {
      return unexpected(Error{0, "migrate " + name + ": the database is at version " + std::to_string(*version) +
                                     ", newer than this build knows (" + std::to_string(target) + ")"});
    }
    if (*version == target) return txn->commit();
    if (auto r = exec(steps[static_cast<size_t>(*version)]); !r) {
      return unexpected(Error{r.error().code, "migrate " + name + " to version " + std::to_string(*version + 1) +
                                                  ": " + r.error().message});
    }
    auto up = prepare("INSERT INTO schema_versions (component, version) VALUES (?1, ?2) "
                      "ON CONFLICT (component) DO UPDATE SET version = excluded.version");
    if (!up) return unexpected(std::move(up).error());
    (void)(*up)->bind(1, name);
    (void)(*up)->bind(2, *version + 1);
    if (auto r = (*up)->run(); !r) return r;
    if (auto r = txn->commit(); !r) return r;
  }
}

}  // namespace parley::storage
