#include "storage/schema.hpp"

#include "storage/user_store.hpp"

namespace parley::storage {

Result<void, Error> migrate_builtin(Database& db) {
  return db.migrate("users", user_store::migrations());
}

}  // namespace parley::storage
