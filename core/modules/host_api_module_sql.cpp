#include "core/modules/host_api_module_sql.hpp"

#include <fmt/format.h>

#include "core/modules/module_manager.hpp"
#include "core/server/server_context.hpp"
#include "storage/postgres_module_sql.hpp"

namespace parley::host_module_sql {

Result<std::vector<std::string>, std::string> postgres_steps(const ModuleLibrary& lib) {
  std::vector<std::string> steps;
  const parley_backend_schema* schemas = def_field(lib.def, &parley_module_def::backend_schemas);
  size_t count = schemas ? def_field(lib.def, &parley_module_def::backend_schema_count) : 0;
  bool seen = false;
  for (size_t i = 0; i < count; ++i) {
    const parley_backend_schema& s = schemas[i];
    if (s.backend == PARLEY_BACKEND_SQLITE)
      return unexpected(std::string("backend_schemas names SQLite, whose steps are the def's `schema`"));
    if (s.backend != PARLEY_BACKEND_POSTGRESQL)
      return unexpected(fmt::format("backend_schemas names an unknown backend ({})", s.backend));
    if (seen) return unexpected(std::string("backend_schemas names PostgreSQL twice"));
    seen = true;
    if (s.count > 0 && s.steps == nullptr) return unexpected(std::string("backend_schemas: steps missing"));
    for (size_t j = 0; j < s.count; ++j) {
      if (s.steps[j] == nullptr || s.steps[j][0] == '\0')
        return unexpected(fmt::format("backend_schemas: PostgreSQL step {} is empty", j + 1));
      steps.emplace_back(s.steps[j]);
    }
  }
  return steps;
}

uint32_t storage_backend(parley_module* m) { return m ? m->storage_backend : PARLEY_BACKEND_SQLITE; }

void storage_query(parley_module* m, LoopContext* loop, std::string sql, std::vector<StoredValue> values, bool write,
                   parley_rows_fn done, void* arg, Finish finish) {
  storage::PostgresModuleSql* store = m->manager ? m->manager->module_sql() : nullptr;
  m->storage_in_flight.fetch_add(1);
  auto complete = [m, loop, done, arg, finish](storage::ModuleSqlResult result) {
    auto rows = std::make_shared<parley_rows>();
    rows->result = std::move(result);
    // On the store's thread (or here, if refused): the completion goes to the caller's loop.
    loop->loop.post([m, loop, rows, done, arg, finish] { finish(m, loop, rows, done, arg); });
  };
  if (store == nullptr) {
    storage::ModuleSqlResult refused;
    refused.error = "no PostgreSQL module store";
    return complete(std::move(refused));
  }
  store->query(m->library->name, std::move(sql), std::move(values), write, std::move(complete));
}

}  // namespace parley::host_module_sql
