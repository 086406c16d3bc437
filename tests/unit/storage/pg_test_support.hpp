// The PostgreSQL the storage tests run against: $PARLEY_TEST_PG_URL, set by ctest
// through tests/integration/parley_harness.py with-postgres (which starts a throw-away
// one). Without it the PostgreSQL cases fail, never skip.
#pragma once

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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

// A schema of its own for one test case in the test database, dropped with what it holds
// at the end: the URL sets its search_path (stores given it create their tables there, so
// no case sees another's rows) and names the connections after it (application_name, for
// terminate_sessions_of). A fixture that holds a connection of its own closes it in its
// destructor, which runs before this one's.
struct PgSchema {
  std::string name;
  std::string url;

  explicit PgSchema(const std::string& prefix) {
    static std::atomic<int> serial{0};
    const std::string base = pg_base_url();
    name = prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(++serial);
    auto admin = pg_connect(base);
    REQUIRE(admin->exec("DROP SCHEMA IF EXISTS " + name + " CASCADE; CREATE SCHEMA " + name));
    url = base + (base.find('?') == std::string::npos ? "?" : "&") + "application_name=" + name +
          "&options=-csearch_path%3D" + name;
  }
  ~PgSchema() {
    if (auto admin = storage::PgConnection::connect(pg_base_url(), std::chrono::seconds(10)))
      (void)(*admin)->exec("DROP SCHEMA IF EXISTS " + name + " CASCADE");
  }
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;
};

// The lines a store logs (set_log: connection lost, reconnected), written from the store's
// thread, for the case to look at. Declared before the store, so that it outlives it.
class LogLines {
 public:
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    };
  }
  bool contains(std::string_view line) const {
    std::lock_guard lock(mutex_);
    return std::find(lines_.begin(), lines_.end(), line) != lines_.end();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

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
