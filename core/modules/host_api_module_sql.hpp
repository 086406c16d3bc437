// The host side of SQL per backend (ABI 1.7, issue 11): which backend a module's own
// tables go to (its def's backend_schemas), the storage_backend entry, and storage_query
// on PostgreSQL (storage/postgres_module_sql.hpp runs it). host_api.cpp puts the entry in
// the table and sends a PostgreSQL module's storage_query here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/modules/module_instance.hpp"
#include "core/modules/module_storage.hpp"
#include "parley/module.h"
#include "parley/result.hpp"

namespace parley {

struct LoopContext;

namespace host_module_sql {

// The module's PostgreSQL steps (empty: none declared, or a def older than 1.7); an error
// for a malformed backend_schemas (an entry for SQLite, an unknown backend, one twice,
// a NULL step).
Result<std::vector<std::string>, std::string> postgres_steps(const ModuleLibrary& lib);

uint32_t storage_backend(parley_module* m);

// storage_query of a module on PostgreSQL; `finish` runs on the calling loop with the rows.
using Finish = void (*)(parley_module* m, LoopContext* loop, std::shared_ptr<parley_rows> rows, parley_rows_fn done,
                        void* arg);
void storage_query(parley_module* m, LoopContext* loop, std::string sql, std::vector<StoredValue> values, bool write,
                   parley_rows_fn done, void* arg, Finish finish);

}  // namespace host_module_sql

}  // namespace parley
