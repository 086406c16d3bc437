#include "core/modules/module_storage.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include "storage/database.hpp"

namespace parley {

namespace {

// Modules are trusted native code: this guards against mistakes (a module
// writing another's tables), it is not a sandbox.
struct Guard {
  std::string prefix;  // "mod_x_"
  std::vector<std::string> read_prefixes;  // "mod_dependency_"
  bool migrating = false;
  std::string denied;
};

bool owned(const Guard& guard, const char* table) {
  if (table == nullptr) return true;
  std::string_view name(table);
  if (guard.migrating && name == "schema_versions") return true;  // the migration's own bookkeeping
  return name.substr(0, guard.prefix.size()) == guard.prefix;
}

int authorize(void* arg, int action, const char* a, const char* b, const char* database, const char*) {
  auto* guard = static_cast<Guard*>(arg);
  const char* table = nullptr;
  switch (action) {
    case SQLITE_READ:
    case SQLITE_UPDATE:
    case SQLITE_INSERT:
    case SQLITE_DELETE:
    case SQLITE_CREATE_TABLE:
    case SQLITE_DROP_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
      table = a;
      break;
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_ALTER_TABLE:
      table = b;
      break;
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
    case SQLITE_PRAGMA:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_VIEW:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
      guard->denied = "statement not allowed for modules";
      return SQLITE_DENY;
    default:
      return SQLITE_OK;
  }
  // SQLite's own bookkeeping (sqlite_master while creating a table) is fine.
  if (table != nullptr && std::string_view(table).substr(0, 7) == "sqlite_" && action == SQLITE_READ) return SQLITE_OK;
  if (table != nullptr && std::string_view(table).substr(0, 7) == "sqlite_" &&
      (action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE))
    return SQLITE_OK;
  if (action == SQLITE_READ && table != nullptr) {
    std::string_view name(table);
    for (const std::string& prefix : guard->read_prefixes)
      if (name.substr(0, prefix.size()) == prefix) return SQLITE_OK;
  }
  if (!owned(*guard, table)) {
    guard->denied = fmt::format("table '{}' does not belong to this module (names must start with '{}')", table,
                                guard->prefix);
    return SQLITE_DENY;
  }
  (void)database;
  return SQLITE_OK;
}

class Authorized {
 public:
  Authorized(storage::Database& db, std::string_view module, bool migrating = false,
             const std::vector<std::string>& readable = {})
      : db_(db) {
    guard_.prefix = std::string(module) + "_";
    for (const std::string& other : readable) guard_.read_prefixes.push_back(other + "_");
    guard_.migrating = migrating;
    sqlite3_set_authorizer(db_.handle(), &authorize, &guard_);
  }
  ~Authorized() { sqlite3_set_authorizer(db_.handle(), nullptr, nullptr); }
  const std::string& denied() const { return guard_.denied; }

 private:
  storage::Database& db_;
  Guard guard_;
};

}  // namespace

QueryResult run_module_query(storage::Database& db, std::string_view module, std::string_view sql,
                             const std::vector<StoredValue>& params, const std::vector<std::string>& readable) {
  QueryResult result;
  Authorized authorized(db, module, false, readable);
  // The statement cache is keyed by text: tag it with the module so a
  // statement prepared (and authorized) for one module is never another's.
  std::string text = fmt::format("/*{}*/ {}", module, sql);
  auto statement = db.prepare(text);
  if (!statement) {
    result.error = authorized.denied().empty() ? statement.error().message : authorized.denied();
    return result;
  }
  storage::Statement& st = **statement;
  for (size_t i = 0; i < params.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    const StoredValue& v = params[i];
    Result<void, storage::Error> bound = v.type == PARLEY_VALUE_INT    ? st.bind(index, v.integer)
                                         : v.type == PARLEY_VALUE_TEXT ? st.bind(index, std::string_view(v.bytes))
                                         : v.type == PARLEY_VALUE_BLOB ? st.bind_blob(index, v.bytes)
                                                                       : st.bind_null(index);
    if (!bound) {
      result.error = bound.error().message;
      return result;
    }
  }
  while (true) {
    auto row = st.step();
    if (!row) {
      result.error = row.error().message;
      result.rows.clear();
      return result;
    }
    if (!*row) break;
    int columns = st.column_count();
    result.columns = static_cast<size_t>(columns);
    std::vector<StoredValue> values(static_cast<size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      StoredValue& v = values[static_cast<size_t>(c)];
      switch (sqlite3_column_type(st.handle(), c)) {
        case SQLITE_INTEGER:
          v.type = PARLEY_VALUE_INT;
          v.integer = st.column_int64(c);
          break;
        case SQLITE_FLOAT:
          v.type = PARLEY_VALUE_INT;
          v.integer = static_cast<int64_t>(sqlite3_column_double(st.handle(), c));
          break;
        case SQLITE_TEXT:
          v.type = PARLEY_VALUE_TEXT;
          v.bytes = std::string(st.column_text(c));
          break;
        case SQLITE_BLOB:
          v.type = PARLEY_VALUE_BLOB;
          v.bytes = std::string(st.column_blob(c));
          break;
        default:
          v.type = PARLEY_VALUE_NULL;
      }
    }
    result.rows.push_back(std::move(values));
  }
  result.changes = db.changes();
  st.reset();
  return result;
}

Result<void, std::string> migrate_module(storage::Database& db, std::string_view module,
                                         const std::vector<std::string>& steps) {
  if (steps.empty()) return {};
  std::vector<std::string_view> views(steps.begin(), steps.end());
  Authorized authorized(db, module, true);
  auto migrated = db.migrate(module, views);
  if (!migrated)
    return unexpected(authorized.denied().empty() ? migrated.error().message : authorized.denied());
  return {};
}

}  // namespace parley
