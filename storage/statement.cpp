#include "storage/statement.hpp"

#include <sqlite3.h>

#include <string>

namespace parley::storage {

namespace {

Error error_of(sqlite3_stmt* stmt, int rc, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += sqlite3_errmsg(sqlite3_db_handle(stmt));
  return Error{rc, std::move(message)};
}

// SQLite binds NULL for a null data pointer, so an empty view needs a real one.
const char* non_null(std::string_view bytes) { return bytes.data() ? bytes.data() : ""; }

}  // namespace

Statement::~Statement() { sqlite3_finalize(stmt_); }

Result<void, Error> Statement::check_bind(int rc, int index) {
  if (rc == SQLITE_OK) return {};
  return unexpected(error_of(stmt_, rc, "bind parameter " + std::to_string(index)));
}

Result<void, Error> Statement::bind(int index, int64_t value) {
  return check_bind(sqlite3_bind_int64(stmt_, index, value), index);
}

Result<void, Error> Statement::bind(int index, std::string_view text) {
  return check_bind(sqlite3_bind_text64(stmt_, index, non_null(text), text.size(),
                                        SQLITE_TRANSIENT, SQLITE_UTF8),
                    index);
}

Result<void, Error> Statement::bind_blob(int index, std::string_view bytes) {
  return check_bind(sqlite3_bind_blob64(stmt_, index, non_null(bytes), bytes.size(), SQLITE_TRANSIENT),
                    index);
}

Result<void, Error> Statement::bind_unowned(int index, std::string_view text) {
  return check_bind(sqlite3_bind_text64(stmt_, index, non_null(text), text.size(), SQLITE_STATIC, SQLITE_UTF8),
                    index);
}

Result<void, Error> Statement::bind_blob_unowned(int index, std::string_view bytes) {
  return check_bind(sqlite3_bind_blob64(stmt_, index, non_null(bytes), bytes.size(), SQLITE_STATIC), index);
}

Result<void, Error> Statement::bind_null(int index) {
  return check_bind(sqlite3_bind_null(stmt_, index), index);
}

Result<bool, Error> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = error_of(stmt_, rc, "step");
  // A failed statement must be reset before reuse; doing it now also ends the
  // implicit read transaction it may hold.
  sqlite3_reset(stmt_);
  return unexpected(std::move(e));
}

Result<void, Error> Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return unexpected(std::move(row).error());
    if (!*row) return {};
  }
}

int Statement::column_count() const { return sqlite3_column_count(stmt_); }

bool Statement::column_is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::column_int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string_view Statement::column_text(int column) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);  // after the pointer, as SQLite asks
  return p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view();
}

std::string_view Statement::column_blob(int column) const {
  auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

}  // namespace parley::storage
