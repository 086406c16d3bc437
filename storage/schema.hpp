// storage/schema.hpp - the schemas storage itself owns, migrated before any other use
// of a database (by StoragePool::start, and by tools that open the file directly).
#pragma once

#include "parley/result.hpp"
#include "storage/database.hpp"
#include "storage/error.hpp"

namespace parley::storage {

// Brings every built-in component (today: "users") to its latest version.
Result<void, Error> migrate_builtin(Database& db);

}  // namespace parley::storage
