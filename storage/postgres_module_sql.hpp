// storage/postgres_module_sql.hpp - modules' own SQL on PostgreSQL (the module ABI's
// storage_query for a module that declared PostgreSQL schema steps, ABI 1.7).
//
// One thread of its own owns one connection (pg_store_loop.hpp: libpq with deadlines,
// reconnect with back-off), opened when the first such module loads (a server whose
// modules all keep SQLite opens none). Operations run in the order they were made, what
// is queued in one transaction, each statement in a savepoint of its own (an error voids
// only it), completions after the COMMIT. Each statement runs in its module's schema
// (search_path) and is checked before it first runs (module_sql.hpp: DML only, no
// relation of another schema); each is prepared once per connection.
//
// While the database is away reads (and migrations) fail at once and writes wait in the
// queue (bounded: beyond max_queue new ones fail at once), to run once it is back. A
// write is not idempotent in general (an INSERT with a serial key), so one that may have
// landed is never run twice: a batch cut before its COMMIT was sent committed nothing and
// runs again; a COMMIT whose answer was lost reports its writes failed (they may or may
// not be stored: never reported stored when they are not).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "storage/error.hpp"
#include "storage/module_sql.hpp"
#include "storage/op_queue.hpp"
#include "storage/pg_connection.hpp"
#include "storage/pg_store_loop.hpp"

namespace parley::storage {

class PostgresModuleSql {
 public:
  static constexpr size_t kMaxBatch = 128;
  // Statements whose check is remembered (per module and text); past it, forgotten.
  static constexpr size_t kMaxChecked = 4096;

  using Done = std::function<void(ModuleSqlResult)>;  // on the store's thread

  PostgresModuleSql(std::string url, size_t max_queue);
  ~PostgresModuleSql();  // stop()

  void set_log(std::function<void(std::string_view)> log) { link_.set_log(std::move(log)); }
  void set_stop_grace(std::chrono::milliseconds grace) { stop_grace_ = grace; }

  // Runs `module`'s schema steps not run yet (component "module:NAME", in the schema
  // named after it). Blocks the calling thread (the main thread, before the module starts);
  // connects and starts the store's thread the first time. An error if the database
  // cannot be reached now.
  Result<void, std::string> migrate(const std::string& module, const std::vector<std::string>& steps);

  // One statement of `module`; `done` runs once, on the store's thread (or during the call
  // if refused: not started, stopping, queue full).
  void query(std::string module, std::string sql, std::vector<ModuleSqlValue> params, bool write, Done done);

  size_t queue_length() const { return queue_.length(); }
  void stop();
  bool started() const { return started_.load(); }

 private:
  struct Op {
    enum class Kind { read, write, migrate } kind = Kind::read;
    std::string module;
    std::string sql;
    std::vector<ModuleSqlValue> params;
    std::vector<std::string> steps;  // migrate
    Done done;
    bool is_read() const { return kind != Kind::write; }  // a migration too: it fails at once
    void fail(std::string message) {
      ModuleSqlResult r;
      r.error = std::move(message);
      if (done) done(std::move(r));
    }
  };

  Result<void, std::string> start();
  void run_batch(OpBatch<Op>& batch);
  // Runs batch[from, to) (statements) in one transaction; false if the connection broke
  // before the COMMIT was sent (the caller puts them back).
  bool run_statements(OpBatch<Op>& batch, size_t from, size_t to);
  void run_migration(Op& op);
  // The statement's check (DML, relations of its schema only) and its run.
  ModuleSqlResult run_statement(Op& op, std::optional<PgError>& broken);
  void requeue(OpBatch<Op>& batch, size_t from);

  PgLink link_;
  std::chrono::milliseconds stop_grace_{5000};
  std::thread thread_;
  OpQueue<Op> queue_;
  std::atomic<bool> started_{false};
  std::mutex lifecycle_;
  bool stopped_ = false;
  // The store thread's: the connection's search_path (empty: unknown or the default), the
  // statements checked.
  std::string search_path_;
  std::unordered_set<std::string> checked_;
};

}  // namespace parley::storage
