// Module storage: each module's SQL runs against the server's database, but
// only on tables named after the module (an SQLite authorizer enforces it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parley/module.h"
#include "parley/result.hpp"
#include "storage/module_sql.hpp"

namespace parley {

namespace storage {
class Database;
}

// What a module's statement gets and gives, on either backend (storage/module_sql.hpp).
using StoredValue = storage::ModuleSqlValue;
using QueryResult = storage::ModuleSqlResult;

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
