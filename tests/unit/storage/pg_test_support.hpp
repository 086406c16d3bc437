// The PostgreSQL the storage tests run against: $PARLEY_TEST_PG_URL, set by ctest
// through tests/integration/parley_harness.py with-postgres (which starts a throw-away
// one). Without it the PostgreSQL cases fail, never skip.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "storage/pg_connection.hpp"

namespace parley::test {

inline std::string pg_base_url() {
  const char* url = std::getenv("PARLEY_TEST_PG_URL");
  REQUIRE_MESSAGE(url != nullptr,
                  "PARLEY_TEST_PG_URL is not set: run through ctest (tests/integration/parley_harness.py "
                  "with-postgres starts a PostgreSQL) or point it at a database");
  return url;
}

inline std::unique_ptr<storage::PgConnection> pg_connect(const std::string& url) {
  auto conn = storage::PgConnection::connect(url, std::chrono::seconds(10));
  REQUIRE_MESSAGE(conn.has_value(), (conn ? "" : conn.error().message));
  return std::move(*conn);
}

}  // namespace parley::test
