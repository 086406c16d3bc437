// The PostgreSQL the storage tests run against: $PARLEY_TEST_PG_URL, set by ctest
// through tests/integration/parley_harness.py with-postgres (which starts a throw-away
// one). Without it the PostgreSQL cases fail, never skip.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <thread>

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

// Ends the server sessions of application_name `name` (as a restart of PostgreSQL
// would) once exactly `expected` are there, and returns how many it ended. A test's
// own connection under that name, closed just before, may still be listed while its
// backend exits (the server removes it after the client's close returned): ending
// sessions before it is gone counted it, and a loaded CI machine saw that.
inline int terminate_sessions_of(const std::string& name, int expected) {
  auto admin = pg_connect(pg_base_url());
  storage::PgParam param = storage::PgParam::text(name);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto listed = admin->run("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                             std::span(&param, 1));
    REQUIRE_MESSAGE(listed.has_value(), (listed ? "" : listed.error().message));
    const int64_t now_listed = listed->int64(0, 0);
    if (now_listed == expected) break;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                    name << ": " << now_listed << " sessions listed, not " << expected);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto killed = admin->run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                           std::span(&param, 1));
  REQUIRE_MESSAGE(killed.has_value(), (killed ? "" : killed.error().message));
  return killed->rows();
}

}  // namespace parley::test
