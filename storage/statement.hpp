// storage/statement.hpp - a thin wrapper over one prepared sqlite3_stmt.
//
// Statements are owned by their Database's cache (Database::prepare); callers hold a
// plain pointer that stays valid as long as the Database. Parameter indexes start at 1
// and column indexes at 0, as in SQLite. Text and blob views returned by column_*
// stay valid until the next step(), reset() or column call of another type on that column.
#pragma once

#include <cstdint>
#include <string_view>

#include "parley/result.hpp"
#include "storage/error.hpp"

struct sqlite3_stmt;

namespace parley::storage {

class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Result<void, Error> bind(int index, int64_t value);
  Result<void, Error> bind(int index, std::string_view text);  // copied; UTF-8 text
  Result<void, Error> bind_blob(int index, std::string_view bytes);  // copied; raw bytes
  // Not copied (SQLITE_STATIC): the bytes must stay valid and unchanged until the
  // statement is stepped for the last time with them and bound again. A hot insert's
  // text and payload, which its caller holds across the step, without a copy each.
  Result<void, Error> bind_unowned(int index, std::string_view text);
  Result<void, Error> bind_blob_unowned(int index, std::string_view bytes);
  Result<void, Error> bind_null(int index);

  // true: a row is available through column_*; false: the statement is done.
  Result<bool, Error> step();
  // Steps until done, for statements that return no rows (INSERT, UPDATE, DELETE).
  Result<void, Error> run();

  int column_count() const;
  bool column_is_null(int column) const;
  int64_t column_int64(int column) const;
  std::string_view column_text(int column) const;
  std::string_view column_blob(int column) const;

  // Back to the start, with every parameter unbound.
  void reset();

  sqlite3_stmt* handle() const { return stmt_; }

 private:
  Result<void, Error> check_bind(int rc, int index);

  sqlite3_stmt* stmt_;
};

}  // namespace parley::storage
