// storage/module_sql.hpp - a module's own SQL (the module ABI's storage_query): the values
// and rows it sees whatever the backend, and, for PostgreSQL, the table fence's pieces.
//
// SQLite fences a module's statements with its authorizer callback (core/modules/
// module_storage.cpp). PostgreSQL has none, so there a module's tables live in a schema of
// their own (named after the module: the statements' search_path), and before a statement
// first runs the store checks it (postgres_module_sql.cpp): it must be DML (first_keyword),
// and its plan (EXPLAIN (VERBOSE, FORMAT JSON)) must touch no relation of another schema
// (plan_relations), which also catches a name qualified with another schema.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/result.hpp"

namespace parley::storage {

// A parameter or a column value (PARLEY_VALUE_*).
struct ModuleSqlValue {
  uint32_t type = PARLEY_VALUE_NULL;
  int64_t integer = 0;
  std::string bytes;
};

struct ModuleSqlResult {
  std::vector<std::vector<ModuleSqlValue>> rows;
  size_t columns = 0;
  int64_t changes = 0;
  std::string error;  // empty: done
};

namespace module_sql {

// The statement's first keyword, lowercased, after whitespace and comments (`-- ...`,
// nested `/* ... */`); empty if there is none (or an unclosed comment).
std::string first_keyword(std::string_view sql);

// Whether a module may run the statement at run time: SELECT, INSERT, UPDATE, DELETE, WITH
// or VALUES (its tables are made by its schema steps, not at run time).
bool is_runtime_statement(std::string_view sql);

// The relations an EXPLAIN (VERBOSE, FORMAT JSON) plan reads or writes: each plan node's
// "Schema" and "Relation Name" (a node's after those nested in it). An error if the text is not
// well-formed JSON.
Result<std::vector<std::pair<std::string, std::string>>, std::string> plan_relations(std::string_view json);

// The module's schema (named after the module), quoted as an
// identifier for search_path and CREATE SCHEMA.
std::string quoted_schema(std::string_view module);

}  // namespace module_sql

}  // namespace parley::storage
