// storage/database.hpp - one SQLite connection, its prepared-statement cache,
// transactions and schema migrations.
//
// A Database is used by exactly one thread at a time (the connection is opened with
// SQLITE_OPEN_NOMUTEX); StoragePool gives each of its threads its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "parley/result.hpp"
#include "storage/error.hpp"
#include "storage/statement.hpp"

struct sqlite3;

namespace parley::storage {

class Database {
 public:
  enum class Mode { read_write, read_only };
  class Transaction;

  static constexpr int busy_timeout_ms = 5000;

  // WAL journal (set by read_write connections; it sticks to the file), synchronous=NORMAL,
  // a busy timeout and foreign keys on. A read_write open creates the file (mode 0600),
  // not its directory.
  static Result<std::unique_ptr<Database>, Error> open(const std::string& path, Mode mode);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows needed by the caller (parsed on
  // every call: for schema work and other rare statements).
  Result<void, Error> exec(std::string_view sql);
  // Runs one statement that returns no rows through the prepared-statement cache: for
  // what runs on every transaction (BEGIN, COMMIT, SAVEPOINT, RELEASE), which exec
  // would parse again each time.
  Result<void, Error> run_cached(std::string_view sql);

  // The statement for this SQL text (exactly one statement), from the cache or newly
  // prepared; reset and with no parameter bound. The pointer stays valid as long as the
  // Database; preparing the same text again returns the same object, reset, so do not
  // nest two uses of one SQL text.
  Result<Statement*, Error> prepare(std::string_view sql);

  // Brings `component` from its version in schema_versions to steps.size(), running
  // steps[version..] in order, each in its own transaction with its version bump: a
  // failing step leaves the component at the version before it. Refuses a database
  // whose version is newer than the steps this build knows.
  Result<void, Error> migrate(std::string_view component, std::span<const std::string_view> steps);

  // The current version of a component, 0 if it never migrated.
  Result<int64_t, Error> schema_version(std::string_view component);

  // Top level: BEGIN IMMEDIATE (BEGIN DEFERRED on a read-only connection). Inside an open
  // transaction: a SAVEPOINT, so functions that need atomicity compose.
  Result<Transaction, Error> begin();

  // Resets every statement left part-way through its rows. A statement that is not reset
  // keeps its read snapshot open, hiding later commits from this connection.
  void reset_statements();

  // True inside BEGIN ... COMMIT (the connection is not in autocommit mode).
  bool in_transaction() const;
  int64_t changes() const;
  int64_t last_insert_rowid() const;
  size_t cached_statements() const { return cache_.size(); }
  Mode mode() const { return mode_; }
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct SqlEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };

  Database(sqlite3* db, std::string path, Mode mode) : db_(db), path_(std::move(path)), mode_(mode) {}
  Error error(int rc, std::string_view what) const;

  sqlite3* db_;
  std::string path_;
  Mode mode_;
  int savepoint_depth_ = 0;
  std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, SqlEqual> cache_;

  friend class Transaction;
};

// Rolls back on destruction unless committed. Movable, so it can be returned in a Result.
class Database::Transaction {
 public:
  Transaction(Transaction&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)), savepoint_(other.savepoint_) {}
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction() { rollback(); }

  Result<void, Error> commit();
  void rollback();
  bool active() const { return db_ != nullptr; }

 private:
  friend class Database;
  Transaction(Database* db, int savepoint) : db_(db), savepoint_(savepoint) {}

  Database* db_;   // null once committed or rolled back
  int savepoint_;  // 0: the top-level transaction; n > 0: SAVEPOINT parley_n
};

}  // namespace parley::storage
