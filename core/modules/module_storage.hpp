// Module storage: each module's SQL runs against the server's database, but
// only on tables named after the module (an SQLite authorizer enforces it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parley/module.h"
#include "parley/result.hpp"

namespace parley {

namespace storage {
class Database;
}

struct StoredValue {
  uint32_t type = PARLEY_VALUE_NULL;
  int64_t integer = 0;
  std::string bytes;
};

struct QueryResult {
  std::vector<std::vector<StoredValue>> rows;
  size_t columns = 0;
  int64_t changes = 0;
  std::string error;
};

// Runs one statement as `module`; refuses tables of others, except reads of
// the tables of `readable` modules (the ones `module` depends on).
QueryResult run_module_query(storage::Database& db, std::string_view module, std::string_view sql,
                             const std::vector<StoredValue>& params, const std::vector<std::string>& readable = {});
// Applies the module's schema steps not applied yet.
Result<void, std::string> migrate_module(storage::Database& db, std::string_view module,
                                         const std::vector<std::string>& steps);

}  // namespace parley

struct parley_rows {
  parley::QueryResult result;
};
