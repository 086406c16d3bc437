// Opens a database read-write for a test, or fails the test saying why.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "storage/database.hpp"

namespace parley::test {

inline std::unique_ptr<storage::Database> open_rw(const std::string& path) {
  auto db = storage::Database::open(path, storage::Database::Mode::read_write);
  REQUIRE_MESSAGE(db.has_value(), (db ? "" : db.error().message));
  return std::move(*db);
}

}  // namespace parley::test
