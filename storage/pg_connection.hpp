// storage/pg_connection.hpp - one PostgreSQL connection, through libpq's asynchronous API,
// for a thread of a store's own (the PostgreSQL archive store's).
//
// Every wait is bounded: the connect and each statement have a deadline, and a connection
// that misses one is closed and reported broken (the store reconnects), so that a database
// that stops answering never holds the store's thread forever. Statements are prepared once
// per connection (keyed by their SQL text) and run with binary results.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parley/result.hpp"
#include "storage/error.hpp"

struct pg_conn;
struct pg_result;

namespace parley::storage {

// A statement's parameter: text (ints as decimal), bytes (binary: bytea), or NULL.
struct PgParam {
  std::string value;
  bool binary = false;
  bool null = false;

  static PgParam text(std::string v) { return PgParam{std::move(v), false, false}; }
  static PgParam integer(int64_t v) { return PgParam{std::to_string(v), false, false}; }
  static PgParam bytes(std::string v) { return PgParam{std::move(v), true, false}; }
};

// The rows of a statement, in binary format.
class PgRows {
 public:
  PgRows() = default;
  explicit PgRows(pg_result* r);
  PgRows(PgRows&& other) noexcept;
  PgRows& operator=(PgRows&& other) noexcept;
  ~PgRows();

  int rows() const;
  int columns() const;
  uint32_t type(int col) const;  // the column's type OID (INT8OID...)
  bool is_null(int row, int col) const;
  std::string_view bytes(int row, int col) const;  // text, bytea
  int64_t int64(int row, int col) const;           // int8 (bigint), or int4
  uint64_t affected() const;                       // rows changed by INSERT/UPDATE/DELETE

 private:
  pg_result* r_ = nullptr;
};

// What went wrong: `broken` when the connection is lost (or timed out) and the statement
// may or may not have run: the caller reconnects and retries what is idempotent.
struct PgError {
  bool broken = false;
  std::string message;
  std::string sqlstate;  // e.g. "23505" (unique_violation); empty when broken
};

class PgConnection {
 public:
  ~PgConnection();

  // Connects within `timeout` (libpq's PQconnectStart/PQconnectPoll).
  static Result<std::unique_ptr<PgConnection>, PgError> connect(const std::string& url,
                                                                std::chrono::milliseconds timeout);

  // A statement without parameters (BEGIN, COMMIT, DDL; several separated by ';').
  Result<void, PgError> exec(std::string_view sql);
  // A statement with parameters, prepared on this connection the first time it is run.
  // Results in binary format, or in text format with text_results (module SQL: any type).
  Result<PgRows, PgError> run(const std::string& sql, std::span<const PgParam> params, bool text_results = false);
  // A statement with parameters, not prepared (the unnamed statement); text results.
  Result<PgRows, PgError> run_once(const std::string& sql, std::span<const PgParam> params);

  bool broken() const { return broken_; }
  void set_statement_timeout(std::chrono::milliseconds t) { statement_timeout_ = t; }

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  // Sends what libpq holds, then collects every result of the statement sent; the last.
  Result<PgRows, PgError> finish_statement();
  Result<void, PgError> wait(bool for_write, std::chrono::steady_clock::time_point deadline);
  PgError lost(std::string what);

  pg_conn* conn_ = nullptr;
  bool broken_ = false;
  std::chrono::milliseconds statement_timeout_{30000};
  std::unordered_map<std::string, std::string> prepared_;  // SQL -> statement name
};

// Versioned schema steps per component, as the SQLite side's Database::migrate: a table
// parley_schema (component, version); steps above the stored version run, in one
// transaction, under an advisory lock (two servers starting at once migrate once). A
// database whose version is above the steps known (a newer Parley wrote it) is refused.
// search_path (not empty): the steps run with it (SET LOCAL: a module's steps in the
// module's schema, created first if missing), the bookkeeping with the connection's own.
Result<void, PgError> pg_migrate(PgConnection& conn, std::string_view component,
                                 std::span<const std::string_view> steps, std::string_view search_path = {});

}  // namespace parley::storage
